#include "auth_proxy/cache/credential_cache.hpp"

#include "auth_proxy/posix.hpp"

#include <sys/random.h>

#include <cerrno>
#include <stdexcept>

namespace auth_proxy {

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
            throw std::runtime_error(errno_text("no random bytes for a secret", errno));
        }
        filled += static_cast<std::size_t>(got);
    }
    return secret;
}

CredentialCache::CredentialCache(std::size_t capacity, Clock::duration ttl, const CacheSecret &secret)
    : mac_(secret.data(), secret.size()), set_(capacity, ttl)
{
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

CacheKey CredentialCache::key_for_store(std::string_view store, std::uint64_t scope, std::string_view user,
                                        std::string_view password) const noexcept
{
    // Five fields where the user file's key has three: the two never meet.
    char scope_bytes[8];
    for (int i = 0; i < 8; ++i) {
        scope_bytes[i] = static_cast<char>(scope >> (8 * i));
    }
    Sha256 hash = mac_.begin();
    add_field(hash, "store");
    add_field(hash, store);
    add_field(hash, std::string_view(scope_bytes, sizeof scope_bytes));
    add_field(hash, user);
    add_field(hash, password);
    return mac_.finish(hash);
}

} // namespace auth_proxy
