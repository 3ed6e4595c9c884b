/**
 * @file config.hpp
 * The module's configuration records and their merge rules, kept free of
 * httpd types so the unit tests can check every field (create and merge are
 * the two places a forgotten field fails silently).
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace auth_proxy {

class Scheme;
class UserFile;

/** Per-directory settings; each field is merged on its own. */
struct DirConfig {
    const char *user_file_path = nullptr; ///< AuthUserFile, resolved against ServerRoot; null: unset
    UserFile *user_file = nullptr;        ///< the process-wide entry for user_file_path
    const Scheme *scheme = nullptr;       ///< AuthType here, if it is one of ours (see auth_type_set)
    int auth_type_set = -1;               ///< AuthType set here: 1 (ours or another module's), unset: -1
    int always_proxy = -1;                ///< AuthProxyChallenge proxy: 1, auto: 0, unset: -1
    const char *providers = nullptr;      ///< AuthProxyProvider names, space-separated; null: "file"
    int auth_name = -1;                   ///< AuthName set here: 1; unset: -1 (configtest wants one per scope)
    const char *keytab_path = nullptr;    ///< AuthProxyKeytab, resolved against ServerRoot; null: unset
    int local_name = -1;                  ///< AuthProxyLocalName On: 1, Off: 0, unset: -1 (On)
    int connection_bound = -1;            ///< AuthProxyConnectionBound On: 1, Off: 0, unset: -1 (On)
    std::uint64_t scope = 0;              ///< names the sections merged into this one, in order (see mix_scopes())
};

/**
 * A fresh section identity: a per-process random value and a counter, so
 * no two sections of any configuration cycle of this server share one.
 */
std::uint64_t new_scope_id() noexcept;

/**
 * The identity of section @p inner merged over @p outer. Order matters, so
 * that the merged identity names exactly which sections matched and in which
 * order: what decided every other module's merged configuration too.
 */
std::uint64_t mix_scopes(std::uint64_t outer, std::uint64_t inner) noexcept;

/** The most stores one AuthProxyProvider may list. */
constexpr std::size_t kMaxProviders = 8;

/** The name of the indexed AuthUserFile store in AuthProxyProvider. */
constexpr const char *kFileProvider = "file";

/** The name of the store that checks passwords against the KDC (KerberosStore) in AuthProxyProvider. */
constexpr const char *kKerberosProvider = "kerberos";

/** True if @p providers (a DirConfig::providers value; null: the default) lists @p name. */
bool lists_provider(const char *providers, const char *name) noexcept;

/** True if @p providers (a DirConfig::providers value; null: the default) asks for the user file. */
bool uses_user_file(const char *providers) noexcept;

/** Inner scope @p add over outer scope @p base: what @p add sets wins. */
DirConfig merge(const DirConfig &base, const DirConfig &add) noexcept;

/** Process-wide settings in microseconds / entries; -1 (or null): unset. */
struct ServerConfig {
    std::int64_t reload_interval_us = -1;  ///< AuthProxyReloadInterval
    std::int64_t cache_timeout_us = -1;    ///< AuthProxyCacheTimeout
    long cache_entries = -1;               ///< AuthProxyCacheEntries
    int throttle = -1;                     ///< AuthProxyThrottle On: 1, Off: 0
    long throttle_failures = -1;           ///< AuthProxyThrottleFailures
    std::int64_t throttle_window_us = -1;  ///< AuthProxyThrottleWindow
    std::int64_t throttle_lockout_us = -1; ///< AuthProxyThrottleLockout
    long throttle_user_failures = -1;      ///< AuthProxyThrottleUserFailures (0: no per-user lockout)
    long throttle_entries = -1;            ///< AuthProxyThrottleEntries
    long throttle_prefix56_failures = -1;  ///< AuthProxyThrottlePrefix56Failures (0: not counted)
    long throttle_prefix48_failures = -1;  ///< AuthProxyThrottlePrefix48Failures (0: not counted)
    const char *throttle_exempt = nullptr; ///< AuthProxyThrottleExempt, the blocks space-separated
    const char *throttle_socache = nullptr; ///< AuthProxyThrottleSOCache "provider[:args]"
    long verify_limit = -1;                ///< AuthProxyVerifyLimit: hash verifications at once, server-wide
    std::int64_t verify_wait_us = -1;      ///< AuthProxyVerifyWait: the longest wait for a verification slot
};

ServerConfig merge(const ServerConfig &base, const ServerConfig &add) noexcept;

constexpr std::int64_t kDefaultReloadIntervalUs = 500 * 1000;
constexpr std::int64_t kDefaultCacheTimeoutUs = 300 * 1000 * 1000LL;
constexpr long kDefaultCacheEntries = 10000;
constexpr long kDefaultThrottleFailures = 20;
constexpr std::int64_t kDefaultThrottleWindowUs = 600 * 1000 * 1000LL;
constexpr std::int64_t kDefaultThrottleLockoutUs = 600 * 1000 * 1000LL;
constexpr long kDefaultThrottleEntries = 16384;
/** An IPv6 /56 unset: this many times AuthProxyThrottleFailures; a /48: kDefaultPrefix48Factor times. */
constexpr long kDefaultPrefix56Factor = 3;
constexpr long kDefaultPrefix48Factor = 10;
/** A request waits this long for a verification slot before it is shed with 503. */
constexpr std::int64_t kDefaultVerifyWaitUs = 2 * 1000 * 1000LL;
/** The longest AuthProxyVerifyWait: past it, a client has long given up. */
constexpr long kMaxVerifyWaitSeconds = 60;
/** The largest count a throttle limit takes. */
constexpr long kMaxThrottleCount = 1000000;

/** @p conf with the defaults filled in where unset. */
ServerConfig with_defaults(const ServerConfig &conf) noexcept;

/** The most seconds a directive takes: a leap year (366 days). */
constexpr long kMaxDirectiveSeconds = 86400L * 366;

/**
 * Parses a directive's number of seconds ("300", "0.5"; 0 allowed, at most
 * kMaxDirectiveSeconds) into microseconds. @return false if @p text is not such a number.
 */
bool parse_seconds(const char *text, std::int64_t &microseconds) noexcept;

/** Parses a count from 0 to @p max. */
bool parse_count(const char *text, long max, long &out) noexcept;

/**
 * What an operator loads to get the authn provider @p name ("ldap":
 * "mod_authnz_ldap and mod_ldap"), or null for a name httpd does not ship
 * (an alias, or a third-party module's).
 */
const char *provider_modules(const char *name) noexcept;

/**
 * True if @p name is not @p known but within two typing slips of it (a
 * letter missing, extra, replaced or two swapped; case and '-'/'_' ignored):
 * `AuthType ProxyBasci` is a typo, not another module's auth type.
 */
bool is_near_miss(const char *name, const char *known) noexcept;

} // namespace auth_proxy
