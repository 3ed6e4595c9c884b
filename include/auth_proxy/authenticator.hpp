/**
 * @file authenticator.hpp
 * The authentication policy: from a credentials header and a client address
 * to a verdict, with every rule in one place and no httpd in sight. The
 * glue maps the verdict to a status, headers and a log line.
 *
 * The stages, in order: the Basic scheme parses the header; the throttle
 * refuses a locked-out client before any password is looked at; the user
 * file's index gives the stored hash; the verifier checks the password
 * (or, for an unknown user or an unusable entry, runs a dummy verification
 * of the file's typical format and cost, so that neither is told apart from
 * a wrong password by time); the credential cache lets a verified password
 * skip the hash; identical repeats of a failure are refused without hashing
 * again; new failures are counted by the throttle.
 */
#pragma once

#include "auth_proxy/basic_credentials.hpp"
#include "auth_proxy/client_address.hpp"
#include "auth_proxy/credential_cache.hpp"
#include "auth_proxy/password_hash.hpp"
#include "auth_proxy/throttle.hpp"
#include "auth_proxy/user_file.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace auth_proxy {

/** What became of the request. */
enum class Outcome {
    admitted,   ///< the user is authenticated
    challenged, ///< no credentials: answer with a challenge (the normal first step)
    refused,    ///< wrong or unusable credentials: a challenge again
    throttled,  ///< the client (or user) is locked out: 429, Retry-After
    failed,     ///< the store cannot answer: 500, fail closed
};

/** Why, for the log line and the counters. */
enum class Reason {
    none,
    no_credentials,
    malformed,        ///< see Verdict::parse_error
    unknown_user,
    unusable_entry,   ///< see Verdict::detail
    wrong_password,
    repeated_failure, ///< the same failed credentials again: refused without hashing
    address_locked,
    user_locked,
    store_unusable,   ///< see Verdict::detail
};

const char *describe(Reason reason) noexcept;

struct Verdict {
    Outcome outcome = Outcome::failed;
    Reason reason = Reason::none;
    std::string_view user;        ///< the user-id sent (points into the CredentialBuffer); empty if none
    CredentialError parse_error = CredentialError::none;
    HashFormat format = HashFormat::unknown; ///< of the verification that ran (real or dummy)
    std::uint32_t cost = 0;
    bool verified = false;        ///< a real verification ran
    bool dummy = false;           ///< a dummy verification ran
    bool cache_hit = false;
    std::chrono::seconds retry_after{0}; ///< throttled: until the lockout ends
    Throttle::Counted counted;    ///< what the throttle made of a failure
    std::string detail;           ///< unusable_entry, store_unusable: the operator-facing reason
};

/** Holds the decoded pair; wiped however the request ends. */
struct CredentialBuffer {
    char bytes[kCredentialBufferSize];
    CredentialBuffer() noexcept = default;
    ~CredentialBuffer();
    CredentialBuffer(const CredentialBuffer &) = delete;
    CredentialBuffer &operator=(const CredentialBuffer &) = delete;
};

/** One request, as the policy sees it. */
struct AuthRequest {
    const char *header = nullptr; ///< the credentials header's value; null: none sent
    ClientAddress client;
    Now now;
};

class Authenticator {
public:
    /** How a password is checked against a stored hash; verify_password() unless a test counts calls. */
    using VerifyFn = bool (*)(const char *password, const char *stored, HashFormat format) noexcept;

    /** @p cache and @p throttle may be null (no cache, no throttling). */
    Authenticator(CredentialCache *cache, Throttle *throttle, VerifyFn verify = verify_password) noexcept
        : cache_(cache), throttle_(throttle), verify_(verify)
    {
    }

    /** The verdict for @p request against the user file state @p users. */
    Verdict authenticate(const UserFileState &users, const AuthRequest &request, CredentialBuffer &buffer) const;

private:
    /** A verification whose answer is thrown away: what an unknown user or unusable entry costs. */
    void dummy_verification(const HtpasswdIndex &index, std::string_view password, Verdict &verdict) const;
    /** The common end of every failure: counted by the throttle, verdict refused. */
    Verdict &refuse(Verdict &verdict, Reason reason, const AuthRequest &request, const SetKey *failure) const;

    CredentialCache *cache_;
    Throttle *throttle_;
    VerifyFn verify_;
};

} // namespace auth_proxy
