#include "auth_proxy/authenticator.hpp"

#include "auth_proxy/scheme/registry.hpp"

namespace auth_proxy {

Authenticator::Authenticator(CredentialCache *cache, Throttle *throttle, VerifyFn verify, SleepFn sleep) noexcept
{
    services_.cache = cache;
    services_.throttle = throttle;
    services_.verify = verify;
    services_.sleep = sleep;
}

void Authenticator::limit_verifications(VerifyLimit *limit, std::chrono::nanoseconds wait) noexcept
{
    services_.limit = limit;
    services_.wait = wait;
}

Verdict Authenticator::authenticate(const SchemeSet &offered, const AuthRequest &request,
                                    CredentialBuffer &buffer) const
{
    if (request.header == nullptr) {
        Verdict v;
        v.outcome = Outcome::challenged;
        v.reason = Reason::no_credentials;
        return v;
    }
    const Scheme *scheme = offered.named_by(request.header);
    if (scheme == nullptr) {
        Verdict v;
        v.outcome = Outcome::refused;
        v.reason = Reason::malformed;
        v.parse_error = CredentialError::wrong_scheme;
        return v;
    }
    Verdict v = scheme->authenticate(services_, request, buffer);
    v.scheme = scheme;
    return v;
}

Verdict Authenticator::authenticate(const Store *stores, std::size_t count, const AuthRequest &request,
                                    CredentialBuffer &buffer) const
{
    static const SchemeSet basic(*scheme_for_auth_type("ProxyBasic"));
    AuthRequest with_stores = request;
    with_stores.stores = stores;
    with_stores.store_count = count;
    return authenticate(basic, with_stores, buffer);
}

Verdict Authenticator::authenticate(const UserFileState &users, const AuthRequest &request,
                                    CredentialBuffer &buffer) const
{
    const Store file{&users, nullptr};
    return authenticate(&file, 1, request, buffer);
}

} // namespace auth_proxy
