/**
 * @file authenticator.hpp
 * The authentication policy: from a credentials header and a client address
 * to a verdict, with every rule in one place and no httpd in sight. The
 * glue maps the verdict to a status, headers and a log line.
 *
 * A request without credentials is challenged with every scheme its scope
 * offers; one with credentials is checked by the scheme its header names,
 * if the scope offers it (see scheme.hpp), with the services every scheme
 * shares: the credential cache, the guessing throttle, the verification
 * slots and the threads that run the hashes.
 */
#pragma once

#include "auth_proxy/auth_request.hpp"
#include "auth_proxy/scheme/scheme.hpp"
#include "auth_proxy/verdict.hpp"

#include <chrono>
#include <cstddef>

namespace auth_proxy {

class Authenticator {
public:
    using VerifyFn = auth_proxy::VerifyFn;
    using SleepFn = auth_proxy::SleepFn;

    /** @p cache and @p throttle may be null (no cache, no throttling). */
    Authenticator(CredentialCache *cache, Throttle *throttle, VerifyFn verify = verify_password,
                  SleepFn sleep = nullptr) noexcept;

    /**
     * Every hash verification first takes a slot of @p limit, waiting at most
     * @p wait; null: verifications are not bounded. Set before the first request.
     */
    void limit_verifications(VerifyLimit *limit, std::chrono::nanoseconds wait) noexcept;

    /**
     * Runs every hash verification (the real ones and the dummies) on
     * @p pool's low-priority threads (which must outlive this object);
     * null: in the request's thread.
     */
    void hash_on(HashPool *pool) noexcept { services_.pool = pool; }

    /** The verdict for @p request in the scheme its header names among @p offered. */
    Verdict authenticate(const SchemeSet &offered, const AuthRequest &request, CredentialBuffer &buffer) const;

    /** The verdict for @p request in ProxyBasic against @p count stores, asked in order. */
    Verdict authenticate(const Store *stores, std::size_t count, const AuthRequest &request,
                         CredentialBuffer &buffer) const;

    /** The verdict for @p request in ProxyBasic against the user file state @p users alone. */
    Verdict authenticate(const UserFileState &users, const AuthRequest &request, CredentialBuffer &buffer) const;

private:
    Services services_;
};

} // namespace auth_proxy
