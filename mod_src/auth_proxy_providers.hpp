/**
 * @file auth_proxy_providers.hpp
 * httpd's authn providers (AuthProxyProvider: dbm, dbd, ldap, anon,
 * socache, <AuthnProviderAlias> names) as checking stores of the core.
 */
#pragma once

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/config.hpp"
#include "auth_proxy/log.hpp"
#include "auth_proxy/store/checking_store.hpp"
#include "auth_proxy/store/kerberos_store.hpp"
#include "auth_proxy/store/user_file.hpp"

#include <memory>
#include <string>

#include <httpd.h>
#include <mod_auth.h>

namespace auth_proxy {

struct Runtime;

/** The registered authn provider @p name that can check passwords, or null. */
const authn_provider *find_authn_provider(const char *name) noexcept;

/**
 * One provider for one request. Calls its check_password() with
 * AUTHN_PROVIDER_NAME_NOTE set, as mod_auth_basic does (an alias finds its
 * configuration through it).
 */
class ProviderStore final : public CheckingStore {
public:
    ProviderStore() = default;
    /** @p times: how long this provider usually takes to answer, kept by the runtime; may be null. */
    ProviderStore(request_rec *r, const char *name, const authn_provider *provider, AnswerTime *times) noexcept
        : r_(r), name_(name), provider_(provider), times_(times)
    {
    }

    std::string_view name() const noexcept override { return name_; }
    CheckAnswer check(std::string_view user, const char *password) override;
    AnswerTime *answer_time() noexcept override { return times_; }

private:
    request_rec *r_ = nullptr;
    const char *name_ = "";
    const authn_provider *provider_ = nullptr;
    AnswerTime *times_ = nullptr;
};

/**
 * The stores of one request in AuthProxyProvider order: the user file alone
 * when no list is set, else the user file where "file" stands, the
 * KerberosStore where "kerberos" stands, and a ProviderStore for every
 * other name. Lives on the request's stack.
 */
class StoreChain {
public:
    /** Where the KerberosStore reports: the request, and the keytab it verifies with (for its log lines). */
    struct KerberosLog {
        request_rec *r;
        const char *keytab;
    };

    /**
     * Builds the chain of @p list (null: the default) for @p r, with the
     * providers' answer times from @p rt. False and @p error if a store is
     * missing: no AuthUserFile for "file", no keys loaded for @p keytab
     * (the scope's AuthProxyKeytab) for "kerberos", or a provider that is
     * no longer registered.
     */
    bool build(request_rec *r, Runtime &rt, const char *list, UserFile *file, const char *keytab,
               const Logger &log, std::string &error);

    /**
     * Marks the user file as changed if it is no longer the version its
     * state was read from (see Store::changed): where files are reloaded,
     * a request never trusts an index the file has left behind.
     */
    void follow_changes() noexcept;

    const Store *stores() const noexcept { return stores_; }
    std::size_t size() const noexcept { return count_; }

    /** What store @p i is called in log lines: the user file's path, or the provider's name. */
    std::string name_of(int i) const;
    /** Every store, for "user X not found in ...". */
    std::string names() const;
    bool is_file(int i) const noexcept { return i >= 0 && static_cast<std::size_t>(i) < count_ && stores_[i].file != nullptr; }

private:
    Store stores_[kMaxProviders];
    ProviderStore providers_[kMaxProviders];
    KerberosStore kerberos_;
    KerberosLog kerberos_log_{nullptr, nullptr};
    std::shared_ptr<const UserFileState> file_state_;
    const UserFile *file_ = nullptr;
    std::size_t count_ = 0;
};

} // namespace auth_proxy
