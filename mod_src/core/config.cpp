#include "auth_proxy/config.hpp"

#include "auth_proxy/limit/verify_limit.hpp"

#include <cctype>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <strings.h>
#include <vector>
#include <algorithm>
#include <string_view>

#include <sys/random.h>
#include <unistd.h>

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
    // An AuthType and what it names travel together.
    const DirConfig &type_from = add.auth_type_set != -1 ? add : base;
    out.scheme = type_from.scheme;
    out.auth_type_set = type_from.auth_type_set;
    out.always_proxy = pick(add.always_proxy, base.always_proxy, -1);
    out.providers = pick<const char *>(add.providers, base.providers, nullptr);
    out.auth_name = pick(add.auth_name, base.auth_name, -1);
    out.keytab_path = pick<const char *>(add.keytab_path, base.keytab_path, nullptr);
    out.local_name = pick(add.local_name, base.local_name, -1);
    out.connection_bound = pick(add.connection_bound, base.connection_bound, -1);
    out.scope = mix_scopes(base.scope, add.scope);
    return out;
}

namespace {

/** SplitMix64's finaliser: a bijection whose every output bit depends on every input bit. */
std::uint64_t scramble(std::uint64_t x) noexcept
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::uint64_t process_nonce() noexcept
{
    std::uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce)) {
        // No entropy this early is not expected; the time and pid still keep
        // one process's identities apart from another's.
        nonce = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                (static_cast<std::uint64_t>(getpid()) << 32);
    }
    return nonce;
}

} // namespace

std::uint64_t new_scope_id() noexcept
{
    static const std::uint64_t nonce = process_nonce();
    static std::atomic<std::uint64_t> counter{0};
    // scramble() is a bijection: distinct counter values give distinct ids.
    return scramble(nonce + counter.fetch_add(1, std::memory_order_relaxed));
}

std::uint64_t mix_scopes(std::uint64_t outer, std::uint64_t inner) noexcept
{
    return scramble(scramble(outer) ^ (inner * 0x9fb21c651e98df25ULL + 0x2545f4914f6cdd1dULL));
}

bool lists_provider(const char *providers, const char *name) noexcept
{
    if (providers == nullptr) {
        return false;
    }
    const std::string_view list(providers), wanted(name);
    for (std::size_t at = 0; at <= list.size();) {
        const std::size_t end = std::min(list.find(' ', at), list.size());
        if (list.substr(at, end - at) == wanted) {
            return true;
        }
        at = end + 1;
    }
    return false;
}

bool uses_user_file(const char *providers) noexcept
{
    return providers == nullptr || lists_provider(providers, kFileProvider);
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
    out.verify_limit = pick(add.verify_limit, base.verify_limit, -1L);
    out.verify_wait_us = pick(add.verify_wait_us, base.verify_wait_us, std::int64_t{-1});
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
    if (out.verify_limit < 0) out.verify_limit = static_cast<long>(VerifyLimit::default_cap());
    if (out.verify_wait_us < 0) out.verify_wait_us = kDefaultVerifyWaitUs;
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
        seconds > static_cast<double>(kMaxDirectiveSeconds)) {
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

const char *provider_modules(const char *name) noexcept
{
    // The providers httpd 2.4 ships that check passwords (check_password),
    // and the modules that register them: the module names differ from the
    // provider names in ways nobody guesses (authn_dbm, but authnz_ldap).
    static const struct {
        const char *provider;
        const char *modules;
    } known[] = {
        {"file", "mod_authn_file"},
        {"dbm", "mod_authn_dbm"},
        {"dbd", "mod_authn_dbd and mod_dbd"},
        {"ldap", "mod_authnz_ldap and mod_ldap"},
        {"anon", "mod_authn_anon"},
        {"socache", "mod_authn_socache"},
    };
    if (name == nullptr) {
        return nullptr;
    }
    for (const auto &k : known) {
        if (std::strcmp(k.provider, name) == 0) {
            return k.modules;
        }
    }
    return nullptr;
}

namespace {

/** @p text lower-cased, with '-' and '_' left out. */
std::string folded(const char *text)
{
    std::string out;
    for (const char *c = text; *c != '\0'; ++c) {
        if (*c != '-' && *c != '_') {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
        }
    }
    return out;
}

/** Edits (insert, delete, replace, swap two neighbours) from @p a to @p b. */
std::size_t edit_distance(const std::string &a, const std::string &b)
{
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t replace = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, replace});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

} // namespace

bool is_near_miss(const char *name, const char *known) noexcept
{
    if (name == nullptr || known == nullptr || strcasecmp(name, known) == 0) {
        return false;
    }
    try {
        return edit_distance(folded(name), folded(known)) <= 2;
    }
    catch (...) {
        return false;
    }
}

} // namespace auth_proxy
