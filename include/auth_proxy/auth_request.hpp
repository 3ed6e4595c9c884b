/**
 * @file auth_request.hpp
 * One request as a scheme sees it: its credentials header, its client, the
 * time, and the password stores of its scope.
 */
#pragma once

#include "auth_proxy/store/checking_store.hpp"
#include "auth_proxy/store/user_file.hpp"
#include "auth_proxy/throttle/client_address.hpp"
#include "auth_proxy/throttle/throttle.hpp"

#include <cstddef>
#include <cstdint>

namespace auth_proxy {

class GssAcceptor;

/** One store of a scope, in the order AuthProxyProvider lists them: exactly one of the two is set. */
struct Store {
    const UserFileState *file = nullptr; ///< the indexed AuthUserFile
    CheckingStore *checker = nullptr;    ///< a store that checks passwords itself
    /**
     * Set (with file) when the user file on disk is no longer the version
     * file was read from (UserFile::behind()) and its new index is not in
     * yet: the user is read from the file itself (UserFile::read_user()),
     * so a change counts from the moment it is on disk, as with
     * mod_authn_file, never from when an index catches up.
     */
    const UserFile *changed = nullptr;
};

/**
 * Which configuration the checking stores of a request answer under. An
 * httpd provider's answer depends on its directives in the request's scope
 * (AuthDBMUserFile, AuthLDAPURL with its filter, ...) and on the vhost,
 * which the module cannot read; the glue names them by identity instead.
 * Unknown (e.g. a .htaccess file took part): the stores are asked every
 * time, with neither the cache nor the failure memory in between.
 */
struct StoreScope {
    std::uint64_t id = 0;
    bool known = false;
};

/** One request, as the policy sees it. */
struct AuthRequest {
    const char *header = nullptr; ///< the credentials header's value; null: none sent
    ClientAddress client;
    Now now;
    StoreScope scope;
    const Store *stores = nullptr; ///< the scope's password stores, asked in order
    std::size_t store_count = 0;
    GssAcceptor *acceptor = nullptr; ///< the scope's Kerberos acceptor (AuthProxyKeytab); null: none
};

} // namespace auth_proxy
