#include "auth_proxy/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace auth_proxy {

namespace {

template <typename T>
T pick(T add, T base, T unset) noexcept
{
    return add != unset ? add : base;
}

} // namespace

DirConfig merge(const DirConfig &base, const DirConfig &add) noexcept
{
    DirConfig out;
    // The path and its registry entry travel together.
    const DirConfig &file_from = add.user_file_path != nullptr ? add : base;
    out.user_file_path = file_from.user_file_path;
    out.user_file = file_from.user_file;
    out.proxy_basic = pick(add.proxy_basic, base.proxy_basic, -1);
    out.always_proxy = pick(add.always_proxy, base.always_proxy, -1);
    return out;
}

ServerConfig merge(const ServerConfig &base, const ServerConfig &add) noexcept
{
    ServerConfig out;
    out.reload_interval_us = pick(add.reload_interval_us, base.reload_interval_us, std::int64_t{-1});
    out.cache_timeout_us = pick(add.cache_timeout_us, base.cache_timeout_us, std::int64_t{-1});
    out.cache_entries = pick(add.cache_entries, base.cache_entries, -1L);
    return out;
}

ServerConfig with_defaults(const ServerConfig &conf) noexcept
{
    ServerConfig out = conf;
    if (out.reload_interval_us < 0) out.reload_interval_us = kDefaultReloadIntervalUs;
    if (out.cache_timeout_us < 0) out.cache_timeout_us = kDefaultCacheTimeoutUs;
    if (out.cache_entries < 0) out.cache_entries = kDefaultCacheEntries;
    return out;
}

bool parse_seconds(const char *text, std::int64_t &microseconds) noexcept
{
    if (text == nullptr) {
        return false;
    }
    errno = 0;
    char *end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !std::isfinite(seconds) || seconds < 0 ||
        seconds > 86400.0 * 366) {
        return false;
    }
    microseconds = static_cast<std::int64_t>(std::llround(seconds * 1e6));
    return true;
}

bool parse_count(const char *text, long max, long &out) noexcept
{
    if (text == nullptr) {
        return false;
    }
    errno = 0;
    char *end = nullptr;
    const long n = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n < 0 || n > max) {
        return false;
    }
    out = n;
    return true;
}

} // namespace auth_proxy
