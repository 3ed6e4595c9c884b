#include "auth_proxy/credential_cache.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace auth_proxy {

namespace {

constexpr std::size_t kShards = 16;

/** Hashes a length-prefixed field, so ("ab","c") and ("a","bc") differ. */
void add_field(Sha256 &hash, std::string_view field) noexcept
{
    const auto length = static_cast<std::uint64_t>(field.size());
    std::uint8_t prefix[8];
    for (int i = 0; i < 8; ++i) {
        prefix[i] = static_cast<std::uint8_t>(length >> (8 * i));
    }
    hash.update(prefix, sizeof prefix);
    hash.update(field);
}

} // namespace

CacheSecret random_cache_secret()
{
    CacheSecret secret;
    std::size_t filled = 0;
    while (filled < secret.size()) {
        const ssize_t got = getrandom(secret.data() + filled, secret.size() - filled, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            throw std::runtime_error(std::string("no random bytes for the credential cache secret: ") +
                                     std::strerror(errno));
        }
        filled += static_cast<std::size_t>(got);
    }
    return secret;
}

std::size_t CredentialCache::KeyHash::operator()(const CacheKey &key) const noexcept
{
    // The key is already a uniformly distributed MAC: any 8 bytes will do.
    std::size_t h;
    std::memcpy(&h, key.data() + 8, sizeof h);
    return h;
}

CredentialCache::CredentialCache(std::size_t capacity, Clock::duration ttl, const CacheSecret &secret)
    : capacity_(capacity), ttl_(ttl), mac_(secret.data(), secret.size())
{
    // Never more shards than entries, and the shard limits add up to exactly
    // capacity (see remember), so the cache never holds more than asked.
    const std::size_t shards = std::max<std::size_t>(1, std::min(kShards, capacity));
    per_shard_ = capacity / shards;
    shards_.reserve(shards);
    for (std::size_t i = 0; i < shards; ++i) {
        shards_.push_back(std::make_unique<Shard>());
    }
}

CacheKey CredentialCache::key_for(std::string_view user, std::string_view password,
                                  std::string_view stored_hash) const noexcept
{
    Sha256 hash = mac_.begin();
    add_field(hash, user);
    add_field(hash, password);
    add_field(hash, stored_hash);
    return mac_.finish(hash); // hash's destructor wipes the password bytes it buffered
}

CredentialCache::Shard &CredentialCache::shard_for(const CacheKey &key) noexcept
{
    return *shards_[key[0] % shards_.size()];
}

bool CredentialCache::contains(const CacheKey &key, Clock::time_point now)
{
    if (!enabled() || key == CacheKey{}) {
        return false;
    }
    Shard &shard = shard_for(key);
    std::lock_guard<std::mutex> lock(shard.mutex);
    const auto it = shard.map.find(key);
    if (it == shard.map.end()) {
        ++shard.misses;
        return false;
    }
    if (it->second->expires <= now) {
        shard.lru.erase(it->second);
        shard.map.erase(it);
        ++shard.misses;
        return false;
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    ++shard.hits;
    return true;
}

void CredentialCache::remember(const CacheKey &key, Clock::time_point now)
{
    if (!enabled() || key == CacheKey{}) {
        return;
    }
    Shard &shard = shard_for(key);
    std::lock_guard<std::mutex> lock(shard.mutex);
    const auto it = shard.map.find(key);
    if (it != shard.map.end()) {
        it->second->expires = now + ttl_;
        shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
        return;
    }
    // The first capacity % shards shards hold one entry more than the rest.
    const std::size_t limit = per_shard_ + (key[0] % shards_.size() < capacity_ % shards_.size() ? 1 : 0);
    while (shard.map.size() >= limit && !shard.lru.empty()) {
        shard.map.erase(shard.lru.back().key);
        shard.lru.pop_back();
        ++shard.evictions;
    }
    shard.lru.push_front(Node{key, now + ttl_});
    shard.map.emplace(key, shard.lru.begin());
}

CredentialCache::Stats CredentialCache::stats() const
{
    Stats total;
    for (const auto &shard : shards_) {
        std::lock_guard<std::mutex> lock(shard->mutex);
        total.hits += shard->hits;
        total.misses += shard->misses;
        total.evictions += shard->evictions;
        total.entries += shard->map.size();
    }
    return total;
}

} // namespace auth_proxy
