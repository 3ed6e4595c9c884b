/**
 * @file credential_cache.hpp
 * Remembers credentials that passed a hash verification, so the next
 * request with the same credentials skips the (deliberately slow) hash —
 * in whichever server process it arrives.
 */
#pragma once

#include "auth_proxy/hmac_sha256.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

using Clock = std::chrono::steady_clock;

/** HMAC-SHA256 digest naming one verified (user, password, stored hash). */
using CacheKey = std::array<std::uint8_t, 32>;
using CacheSecret = std::array<std::uint8_t, 32>;

/** A fresh random secret from the operating system's generator. */
CacheSecret random_cache_secret();

/**
 * A bounded set of verified-credential keys with a TTL, shared by every
 * process forked after it was made.
 *
 * The key is HMAC(secret, user, password, stored hash): the plaintext
 * password is never stored, and a changed or removed password changes the
 * stored hash and so misses at once. Only successes are remembered; a
 * failed guess always pays the full hash.
 *
 * The table lives in a shared anonymous mapping, so the httpd parent makes
 * it before the fork and every child (and thread) uses the same entries: a
 * user costs one verification per TTL for the whole server, not one per
 * child. It is set-associative (4 slots per bucket, the least recently used
 * one replaced) and lock-free: each slot is a seqlock, readers never write
 * (but for a rare last-use stamp), and a writer that finds a slot busy just
 * does not remember that one key. A process that dies mid-write leaves one
 * slot unusable, never a wrong answer.
 */
class CredentialCache {
public:
    struct Stats {
        std::uint64_t hits = 0;      ///< this process
        std::uint64_t misses = 0;    ///< this process
        std::uint64_t evictions = 0; ///< this process
        std::size_t entries = 0;     ///< the whole table
    };

    /** @p capacity 0 or @p ttl 0 disables the cache. Throws if the table cannot be mapped. */
    CredentialCache(std::size_t capacity, Clock::duration ttl, const CacheSecret &secret);
    ~CredentialCache();

    CredentialCache(const CredentialCache &) = delete;
    CredentialCache &operator=(const CredentialCache &) = delete;

    bool enabled() const noexcept { return slots_ != nullptr; }

    /** The key for a credential checked against @p stored_hash. */
    CacheKey key_for(std::string_view user, std::string_view password,
                     std::string_view stored_hash) const noexcept;

    /** True if @p key was remembered and has not expired at @p now. */
    bool contains(const CacheKey &key, Clock::time_point now) noexcept;

    /** Remembers @p key until now + ttl, replacing the least recently used entry of its bucket. */
    void remember(const CacheKey &key, Clock::time_point now) noexcept;

    Stats stats() const noexcept;

private:
    struct Slot;

    Slot *bucket_for(const CacheKey &key, std::size_t &ways) const noexcept;

    std::size_t capacity_;
    Clock::duration ttl_;
    HmacSha256 mac_;
    Slot *slots_ = nullptr; ///< capacity_ slots in a shared mapping; null when disabled
    std::size_t mapped_bytes_ = 0;
    std::size_t buckets_ = 0;
    std::atomic<std::uint64_t> hits_{0}, misses_{0}, evictions_{0};
};

} // namespace auth_proxy
