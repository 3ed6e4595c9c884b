/**
 * @file metrics.hpp
 * The numbers operators watch: authentications by outcome and reason, the
 * credential cache, hash verifications by format and their time, lockouts
 * and user file reloads.
 *
 * They live in one block of shared memory that the httpd parent maps
 * before the fork and keeps across graceful restarts, so whichever server
 * process answers a status request answers for the whole server. Every
 * counter is a relaxed atomic: each one is exact, but a set of them read
 * together is not a snapshot of one instant.
 */
#pragma once

#include "auth_proxy/cache/shared_key_set.hpp"
#include "auth_proxy/file_signature.hpp"
#include "auth_proxy/verify/password_hash.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

enum class Reason;
struct Verdict;

/** Why an authentication did not admit, as counted: the verdict's Reason, the two lockouts merged. */
enum class Failure {
    no_credentials, ///< none sent: the challenge, every client's first step
    malformed,
    unknown_user,
    wrong_password,
    repeated,       ///< the same failed credentials again, refused without hashing
    unusable_entry,
    throttled,      ///< refused with 429: the address (or user) is locked out, or the throttle has no room
    file_unusable,  ///< the user file cannot be used: 500
    store_error,    ///< a checking store (an authn provider) or the Kerberos acceptor could not answer: 500
    ticket_refused, ///< a valid-looking Kerberos token refused: replayed, expired, for another service, unmapped
};
constexpr std::size_t kFailureKinds = 10;

/** The Failure that @p reason counts as; false for Reason::none (nothing failed). */
bool failure_of(Reason reason, Failure &out) noexcept;

/** Every hash format has a slot, indexed by its enum value (HashFormat::unknown is never counted). */
constexpr std::size_t kHashFormats = static_cast<std::size_t>(HashFormat::sha512_crypt) + 1;

/** The counters as read at one moment (each exact, the set not atomic). */
struct MetricsSnapshot {
    std::uint64_t admitted = 0;
    std::array<std::uint64_t, kFailureKinds> failures{}; ///< indexed by Failure
    std::uint64_t cache_hits = 0;
    std::uint64_t cache_misses = 0;
    std::uint64_t cache_evictions = 0;
    std::array<std::uint64_t, kHashFormats> verifications{};   ///< real and dummy, indexed by HashFormat
    std::array<std::uint64_t, kHashFormats> verification_ns{}; ///< time they took
    std::uint64_t address_lockouts = 0;
    std::uint64_t user_lockouts = 0;
    std::uint64_t reloads = 0;         ///< user file versions indexed while the server ran
    std::uint64_t reload_failures = 0; ///< user files that became unusable while the server ran
    std::uint64_t last_reload_ns = 0;  ///< how long the last counted reload took
    std::uint64_t last_reload_unix_ns = 0; ///< when it was put in use, since the epoch; 0: none yet
    std::uint64_t throttle_full = 0;   ///< requests refused, or failures not counted, for want of throttle room

    std::uint64_t failure(Failure f) const noexcept { return failures[static_cast<std::size_t>(f)]; }
};

/**
 * The counters, laid over a caller's block of memory of fixed layout
 * (bytes() bytes, zero-filled when first used; shared between processes
 * and outliving this object). Anything may count into it from any thread
 * or process.
 */
class Metrics {
public:
    /** Changes whenever the block's layout does: a block of another layout is not reused. */
    static constexpr std::uint32_t kLayout = 4;

    /** Size of the block. */
    static std::size_t bytes() noexcept;

    explicit Metrics(void *memory) noexcept;

    /** Counts one authentication: its outcome or failure, the verification it ran, a lockout it started. */
    void count(const Verdict &verdict) noexcept;

    /** Where the credential cache counts its hits, misses and evictions. */
    KeySetCounters &cache_counters() noexcept;

    /**
     * A process published @p version of the user file @p path, indexed or
     * mapped in @p took. Each process that sees a change reports it; it is
     * counted once for the whole server, as a reload if @p reload (false:
     * the first read of a configuration cycle, remembered but not counted).
     * @return true if this call counted it.
     */
    bool file_indexed(std::string_view path, const FileSignature &version, bool reload,
                      std::chrono::nanoseconds took) noexcept;

    /** The same for a user file that became unusable with @p error (the error text tells failures apart). */
    bool file_unusable(std::string_view path, std::string_view error, bool reload) noexcept;

    MetricsSnapshot snapshot() const noexcept;

private:
    struct Block;

    /** Moves @p path's last seen outcome to @p outcome: true if it was another one (or not tracked). */
    bool first_to_see(std::string_view path, std::uint64_t outcome) noexcept;

    Block *block_;
};

} // namespace auth_proxy
