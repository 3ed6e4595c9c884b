/**
 * @file credential_cache.hpp
 * Remembers credentials that passed a hash verification, so the next
 * request with the same credentials skips the (deliberately slow) hash —
 * in whichever server process it arrives.
 */
#pragma once

#include "auth_proxy/cache/hmac_sha256.hpp"
#include "auth_proxy/cache/shared_key_set.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

/** HMAC-SHA256 digest naming one verified (user, password, stored hash). */
using CacheKey = SetKey;
using CacheSecret = std::array<std::uint8_t, 32>;

/** A fresh random secret from the operating system's generator. */
CacheSecret random_cache_secret();

/**
 * Appends @p field to @p hash length-prefixed, so that ("ab","c") and
 * ("a","bc") hash differently: how every keyed digest here is built.
 */
void add_field(Sha256 &hash, std::string_view field) noexcept;

/**
 * The verified-credential cache: a SharedKeySet keyed by
 * HMAC(secret, user, password, stored hash) for the user file, and by
 * HMAC(secret, "store", store name, scope, user, password) for a checking
 * store. The password is the part the hash reads (see
 * significant_password_bytes()); the plaintext is never stored. A user
 * file's answer is a function of the password and the stored hash alone, so
 * a changed or removed password misses at once, in any scope. A checking
 * store's answer depends on its directives in the request's scope (the DBM
 * file, the LDAP URL with its filter) and the vhost, which the scope names. Only successes are remembered; a failed guess
 * always pays the full hash. Made by the parent before the fork, so a user
 * costs one verification per TTL for the whole server, not one per child.
 */
class CredentialCache {
public:
    using Stats = SharedKeySet::Stats;

    /** @p capacity 0 or @p ttl 0 disables the cache. Throws if the table cannot be mapped. */
    CredentialCache(std::size_t capacity, Clock::duration ttl, const CacheSecret &secret);

    bool enabled() const noexcept { return set_.enabled(); }

    /** The key for a credential checked against @p stored_hash. */
    CacheKey key_for(std::string_view user, std::string_view password,
                     std::string_view stored_hash) const noexcept;

    /** The key for a credential a checking store (e.g. LDAP) named @p store granted in the scope @p scope. */
    CacheKey key_for_store(std::string_view store, std::uint64_t scope, std::string_view user,
                           std::string_view password) const noexcept;

    /** True if @p key was remembered and has not expired at @p now. */
    bool contains(const CacheKey &key, Clock::time_point now) noexcept { return set_.contains(key, now); }

    /** Remembers @p key until now + ttl, replacing the least recently used entry of its bucket. */
    void remember(const CacheKey &key, Clock::time_point now) noexcept { set_.remember(key, now); }

    Stats stats() const noexcept { return set_.stats(); }

    /** Counts hits, misses and evictions into @p counters (see SharedKeySet::count_into()). */
    void count_into(KeySetCounters &counters) noexcept { set_.count_into(counters); }

private:
    HmacSha256 mac_;
    SharedKeySet set_;
};

} // namespace auth_proxy
