/**
 * @file scheme.hpp
 * The seam between the authentication policy and one HTTP authentication
 * scheme (Basic, ...). A scheme knows its name in AuthType and in headers,
 * the challenge it sends, how its credentials are read and checked, and
 * what the shared services (cache, throttle, verification slots) key on
 * for it. The Authenticator picks the scheme a request's header names among
 * those its scope offers; the glue never names a scheme.
 *
 * A new scheme is a folder under scheme/ with a class derived from Scheme,
 * and one line in registry.cpp.
 */
#pragma once

#include "auth_proxy/auth_request.hpp"
#include "auth_proxy/cache/credential_cache.hpp"
#include "auth_proxy/limit/verify_limit.hpp"
#include "auth_proxy/throttle/throttle.hpp"
#include "auth_proxy/verdict.hpp"
#include "auth_proxy/verify/hash_pool.hpp"
#include "auth_proxy/verify/password_hash.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace auth_proxy {

/** How a password is checked against a stored hash; verify_password() unless a test counts calls. */
using VerifyFn = bool (*)(const char *password, const char *stored, HashFormat format) noexcept;
/** How an answer is padded in time; a real sleep unless a test keeps the time. */
using SleepFn = void (*)(std::chrono::nanoseconds) noexcept;

/** What every scheme shares: one of each per server process. Null members are switched off. */
struct Services {
    CredentialCache *cache = nullptr;
    Throttle *throttle = nullptr;
    VerifyLimit *limit = nullptr;         ///< every hash verification takes a slot first
    std::chrono::nanoseconds wait{0};     ///< the longest a slot is waited for
    HashPool *pool = nullptr;             ///< runs the hashes, at low priority; null: the request's thread
    VerifyFn verify = verify_password;
    SleepFn sleep = nullptr;              ///< null: a real sleep
};

class Scheme {
public:
    virtual ~Scheme() = default;

    /** The AuthType that makes it a scope's scheme: "ProxyBasic". */
    virtual std::string_view auth_type() const noexcept = 0;
    /** Its token in Proxy-Authorization and Proxy-Authenticate: "Basic". */
    virtual std::string_view token() const noexcept = 0;
    /**
     * Whether it checks passwords against the scope's stores (AuthUserFile,
     * AuthProxyProvider): a scope that has stores offers it beside its own
     * scheme; a scope of this scheme without stores cannot admit anyone.
     */
    virtual bool checks_passwords() const noexcept = 0;
    /** Whether it accepts tickets with the scope's service keys (AuthProxyKeytab), which it then needs. */
    virtual bool uses_service_keys() const noexcept { return false; }
    /**
     * Whether a connection it authenticated may stay authenticated for its
     * later requests (AuthProxyConnectionBound): a scheme whose clients
     * authenticate a connection once, and send nothing after.
     */
    virtual bool binds_connection() const noexcept { return false; }
    /** The value of one challenge header for @p realm (unescaped). */
    virtual std::string challenge(std::string_view realm) const = 0;
    /**
     * The verdict for @p request, whose header names this scheme. Whatever
     * the credentials decode to lives in @p buffer, wiped when it goes.
     */
    virtual Verdict authenticate(const Services &services, const AuthRequest &request,
                                 CredentialBuffer &buffer) const = 0;
};

/** The first word of a credentials header, leading blanks skipped: its scheme's token. */
std::string_view scheme_token(std::string_view header) noexcept;

/** Whether two tokens are the same (case-insensitive ASCII, RFC 9110). */
bool same_token(std::string_view a, std::string_view b) noexcept;

/** The schemes a scope offers, in the order their challenges go out. */
class SchemeSet {
public:
    static constexpr std::size_t kMax = 4;

    SchemeSet() noexcept = default;
    explicit SchemeSet(const Scheme &only) noexcept { add(only); }

    /** Adds @p scheme unless it is there or the set is full. */
    void add(const Scheme &scheme) noexcept;
    /** The one whose token starts @p header (case-insensitive, then a space or the end); null: none. */
    const Scheme *named_by(std::string_view header) const noexcept;

    const Scheme *const *begin() const noexcept { return schemes_.data(); }
    const Scheme *const *end() const noexcept { return schemes_.data() + count_; }
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    const Scheme &first() const noexcept { return *schemes_[0]; }

private:
    std::array<const Scheme *, kMax> schemes_{};
    std::size_t count_ = 0;
};

} // namespace auth_proxy
