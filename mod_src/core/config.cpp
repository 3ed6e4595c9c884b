#include "auth_proxy/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <string_view>

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
    out.providers = pick<const char *>(add.providers, base.providers, nullptr);
    return out;
}

bool uses_user_file(const char *providers) noexcept
{
    if (providers == nullptr) {
        return true;
    }
    const std::string_view list(providers), name(kFileProvider);
    for (std::size_t at = 0; at <= list.size();) {
        const std::size_t end = std::min(list.find(' ', at), list.size());
        if (list.substr(at, end - at) == name) {
            return true;
        }
        at = end + 1;
    }
    return false;
}

ServerConfig merge(const ServerConfig &base, const ServerConfig &add) noexcept
{
    ServerConfig out;
    out.reload_interval_us = pick(add.reload_interval_us, base.reload_interval_us, std::int64_t{-1});
    out.cache_timeout_us = pick(add.cache_timeout_us, base.cache_timeout_us, std::int64_t{-1});
    out.cache_entries = pick(add.cache_entries, base.cache_entries, -1L);
    out.throttle = pick(add.throttle, base.throttle, -1);
    out.throttle_failures = pick(add.throttle_failures, base.throttle_failures, -1L);
    out.throttle_window_us = pick(add.throttle_window_us, base.throttle_window_us, std::int64_t{-1});
    out.throttle_lockout_us = pick(add.throttle_lockout_us, base.throttle_lockout_us, std::int64_t{-1});
    out.throttle_user_failures = pick(add.throttle_user_failures, base.throttle_user_failures, -1L);
    out.throttle_entries = pick(add.throttle_entries, base.throttle_entries, -1L);
    out.throttle_prefix56_failures = pick(add.throttle_prefix56_failures, base.throttle_prefix56_failures, -1L);
    out.throttle_prefix48_failures = pick(add.throttle_prefix48_failures, base.throttle_prefix48_failures, -1L);
    out.throttle_exempt = pick<const char *>(add.throttle_exempt, base.throttle_exempt, nullptr);
    out.throttle_socache = pick<const char *>(add.throttle_socache, base.throttle_socache, nullptr);
    return out;
}

ServerConfig with_defaults(const ServerConfig &conf) noexcept
{
    ServerConfig out = conf;
    if (out.reload_interval_us < 0) out.reload_interval_us = kDefaultReloadIntervalUs;
    if (out.cache_timeout_us < 0) out.cache_timeout_us = kDefaultCacheTimeoutUs;
    if (out.cache_entries < 0) out.cache_entries = kDefaultCacheEntries;
    if (out.throttle < 0) out.throttle = 1;
    if (out.throttle_failures < 0) out.throttle_failures = kDefaultThrottleFailures;
    if (out.throttle_window_us < 0) out.throttle_window_us = kDefaultThrottleWindowUs;
    if (out.throttle_lockout_us < 0) out.throttle_lockout_us = kDefaultThrottleLockoutUs;
    if (out.throttle_user_failures < 0) out.throttle_user_failures = 0;
    if (out.throttle_entries < 0) out.throttle_entries = kDefaultThrottleEntries;
    // A prefix holds many addresses: by default a few times an address's budget, following it.
    if (out.throttle_prefix56_failures < 0)
        out.throttle_prefix56_failures = std::min(out.throttle_failures * kDefaultPrefix56Factor, kMaxThrottleCount);
    if (out.throttle_prefix48_failures < 0)
        out.throttle_prefix48_failures = std::min(out.throttle_failures * kDefaultPrefix48Factor, kMaxThrottleCount);
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
