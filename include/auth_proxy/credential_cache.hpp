/**
 * @file credential_cache.hpp
 * Remembers credentials that passed a hash verification, so the next
 * request with the same credentials skips the (deliberately slow) hash.
 */
#pragma once

#include "auth_proxy/hmac_sha256.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace auth_proxy {

using Clock = std::chrono::steady_clock;

/** HMAC-SHA256 digest naming one verified (user, password, stored hash). */
using CacheKey = std::array<std::uint8_t, 32>;
using CacheSecret = std::array<std::uint8_t, 32>;

/** A fresh random secret from the operating system's generator. */
CacheSecret random_cache_secret();

/**
 * A bounded, thread-safe set of verified-credential keys with a TTL.
 *
 * The key is HMAC(secret, user, password, stored hash): the plaintext
 * password is never stored, and a changed or removed password changes the
 * stored hash and so misses at once. Only successes are remembered; a
 * failed guess always pays the full hash. Sharded LRU: each shard has its
 * own lock, so readers on different keys rarely meet.
 */
class CredentialCache {
public:
    struct Stats {
        std::uint64_t hits = 0;
        std::uint64_t misses = 0;
        std::uint64_t evictions = 0;
        std::size_t entries = 0;
    };

    /** @p capacity 0 or @p ttl 0 disables the cache. */
    CredentialCache(std::size_t capacity, Clock::duration ttl, const CacheSecret &secret);

    bool enabled() const noexcept { return capacity_ > 0 && ttl_ > Clock::duration::zero(); }

    /** The key for a credential checked against @p stored_hash. */
    CacheKey key_for(std::string_view user, std::string_view password,
                     std::string_view stored_hash) const noexcept;

    /** True if @p key was remembered and has not expired at @p now. */
    bool contains(const CacheKey &key, Clock::time_point now);

    /** Remembers @p key until now + ttl, evicting the least recently used. */
    void remember(const CacheKey &key, Clock::time_point now);

    Stats stats() const;

private:
    struct KeyHash {
        std::size_t operator()(const CacheKey &key) const noexcept;
    };
    struct Node {
        CacheKey key;
        Clock::time_point expires;
    };
    struct Shard {
        mutable std::mutex mutex;
        std::list<Node> lru; ///< most recently used first
        std::unordered_map<CacheKey, std::list<Node>::iterator, KeyHash> map;
        std::uint64_t hits = 0, misses = 0, evictions = 0;
    };

    Shard &shard_for(const CacheKey &key) noexcept;

    std::size_t capacity_;
    std::size_t per_shard_;
    Clock::duration ttl_;
    HmacSha256 mac_;
    std::vector<std::unique_ptr<Shard>> shards_;
};

} // namespace auth_proxy
