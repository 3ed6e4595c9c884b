/**
 * @file config.hpp
 * The module's configuration records and their merge rules, kept free of
 * httpd types so the unit tests can check every field (create and merge are
 * the two places a forgotten field fails silently).
 */
#pragma once

#include <cstdint>

namespace auth_proxy {

class UserFile;

/** Per-directory settings; each field is merged on its own. */
struct DirConfig {
    const char *user_file_path = nullptr; ///< AuthUserFile, resolved against ServerRoot; null: unset
    UserFile *user_file = nullptr;        ///< the process-wide entry for user_file_path
    int proxy_basic = -1;                 ///< AuthType here is ProxyBasic: 1, another: 0, unset: -1
    int always_proxy = -1;                ///< AuthProxyChallenge proxy: 1, auto: 0, unset: -1
};

/** Inner scope @p add over outer scope @p base: what @p add sets wins. */
DirConfig merge(const DirConfig &base, const DirConfig &add) noexcept;

/** Process-wide settings in microseconds / entries; -1: unset. */
struct ServerConfig {
    std::int64_t reload_interval_us = -1; ///< AuthProxyReloadInterval
    std::int64_t cache_timeout_us = -1;   ///< AuthProxyCacheTimeout
    long cache_entries = -1;              ///< AuthProxyCacheEntries
};

ServerConfig merge(const ServerConfig &base, const ServerConfig &add) noexcept;

constexpr std::int64_t kDefaultReloadIntervalUs = 500 * 1000;
constexpr std::int64_t kDefaultCacheTimeoutUs = 300 * 1000 * 1000LL;
constexpr long kDefaultCacheEntries = 10000;

/** @p conf with the defaults filled in where unset. */
ServerConfig with_defaults(const ServerConfig &conf) noexcept;

/**
 * Parses a directive's number of seconds ("300", "0.5"; 0 allowed, at most a
 * year) into microseconds. @return false if @p text is not such a number.
 */
bool parse_seconds(const char *text, std::int64_t &microseconds) noexcept;

/** Parses a count from 0 to @p max. */
bool parse_count(const char *text, long max, long &out) noexcept;

} // namespace auth_proxy
