/**
 * @file checking_store.hpp
 * A store that checks a user and password itself — in practice one of
 * httpd's authn providers (LDAP, SQL, DBM, an <AuthnProviderAlias>), which
 * the glue wraps — as opposed to the indexed user file, which hands out the
 * stored hash and leaves the check to the verifier.
 */
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

/** What such a store says. */
enum class CheckAnswer {
    granted,
    granted_uncacheable, ///< granted, with more than a verdict (another REMOTE_USER): a cache could not repeat it
    denied,         ///< the user exists; the password is wrong
    user_not_found, ///< the next store is asked
    error,          ///< the store cannot answer: fail closed
};

/**
 * How long a store takes to answer for a user it knows (granted or
 * denied): a moving average, shared by the threads of a process. A "user
 * not found" that came back sooner is padded to it, so that the time of a
 * refusal does not tell a name that exists from one that does not.
 */
class AnswerTime {
public:
    void record(std::chrono::nanoseconds took) noexcept;
    /** Zero until something was recorded. */
    std::chrono::nanoseconds typical() const noexcept
    {
        return std::chrono::nanoseconds(average_ns_.load(std::memory_order_relaxed));
    }

private:
    std::atomic<std::int64_t> average_ns_{0};
};

class CheckingStore {
public:
    virtual ~CheckingStore() = default;

    /** The name it was configured under (a provider or alias name): part of the cache key, named in logs. */
    virtual std::string_view name() const noexcept = 0;

    /** Checks @p password (NUL-terminated) for @p user. */
    virtual CheckAnswer check(std::string_view user, const char *password) = 0;

    /** Where its answer times are kept (process-wide), or null. */
    virtual AnswerTime *answer_time() noexcept { return nullptr; }
};

} // namespace auth_proxy
