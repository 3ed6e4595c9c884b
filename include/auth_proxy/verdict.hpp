/**
 * @file verdict.hpp
 * What the authentication of one request came to, whatever its scheme: the
 * outcome the glue turns into a status, and the facts its log line and the
 * counters need.
 */
#pragma once

#include "auth_proxy/scheme/basic/basic_credentials.hpp"
#include "auth_proxy/throttle/throttle.hpp"
#include "auth_proxy/verify/password_hash.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace auth_proxy {

class Scheme;

/** What became of the request. */
enum class Outcome {
    admitted,   ///< the user is authenticated
    challenged, ///< no credentials: answer with a challenge (the normal first step)
    refused,    ///< wrong or unusable credentials: a challenge again
    throttled,  ///< the client (or user) is locked out: 429, Retry-After
    failed,     ///< the store cannot answer: 500, fail closed
    shed,       ///< no verification slot within the wait bound: 503, Retry-After; nothing was checked
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
    throttle_full,    ///< the throttle had no room to count a failure of this client's: refused unasked
    store_unusable,   ///< the user file cannot be used, see Verdict::detail
    store_error,      ///< a checking store could not answer (it logs why itself)
    no_slot,          ///< every verification slot stayed busy for the whole wait: shed
    replayed,         ///< Negotiate: a token seen before, by any server process
    ticket_expired,   ///< Negotiate: the ticket expired, or the clocks are too far apart
    wrong_service,    ///< Negotiate: a ticket for a service the keytab holds no key of
    no_local_name,    ///< Negotiate: the principal maps to no local name (another realm, an instance)
    acceptor_error,   ///< Negotiate: the acceptor could not work (see Verdict::detail): 500
};

const char *describe(Reason reason) noexcept;

struct Verdict {
    Outcome outcome = Outcome::failed;
    Reason reason = Reason::none;
    const Scheme *scheme = nullptr; ///< the scheme the credentials were in; null: none offered was named
    std::string_view user;        ///< the user-id sent (points into the CredentialBuffer); empty if none
    CredentialError parse_error = CredentialError::none;
    HashFormat format = HashFormat::unknown; ///< of the verification that ran (real or dummy)
    std::uint32_t cost = 0;
    bool verified = false;        ///< a real verification ran
    bool dummy = false;           ///< a dummy verification ran
    std::chrono::nanoseconds hashing{0}; ///< spent in the verification that ran (real or dummy)
    std::chrono::nanoseconds padded{0}; ///< an unknown user's answer was held back this long
    std::chrono::nanoseconds waited{0}; ///< for a verification slot
    bool cache_hit = false;
    int store = -1;               ///< which store answered (an index into the list), -1: none
    std::chrono::seconds retry_after{0}; ///< throttled: until the lockout ends; shed: the wait bound
    unsigned locked_prefix = 0;   ///< address_locked: 56 or 48 if an IPv6 prefix of the client's is locked out
    Throttle::Counted counted;    ///< what the throttle made of a failure
    Lockout lockout;              ///< counted.*_locked_now: the rule that locked the client or user out
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

} // namespace auth_proxy
