/**
 * @file auth_proxy_config.hpp
 * Per-directory and per-server configuration of mod_auth_proxy.
 */
#pragma once

#include <httpd.h>
#include <http_config.h>

namespace auth_proxy {
class UserFile;
}

/** The module struct: the only symbol the shared object exports. */
extern "C" __attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA auth_proxy_module;

/** Where a scope's settings came from; each field is merged on its own. */
struct auth_proxy_dir_conf {
    const char *user_file_path;      ///< AuthUserFile, resolved against ServerRoot; NULL: unset
    auth_proxy::UserFile *user_file; ///< the process-wide entry for user_file_path
    int proxy_basic;                 ///< AuthType in this scope is ProxyBasic: 1, another: 0, unset: -1
};

/** Process-wide settings; only the main server's values count. */
struct auth_proxy_server_conf {
    apr_interval_time_t reload_interval; ///< AuthProxyReloadInterval; -1: unset
    apr_interval_time_t cache_timeout;   ///< AuthProxyCacheTimeout; -1: unset
    long cache_entries;                  ///< AuthProxyCacheEntries; -1: unset
};

namespace auth_proxy {

constexpr apr_interval_time_t kDefaultReloadInterval = apr_time_from_msec(500);
constexpr apr_interval_time_t kDefaultCacheTimeout = apr_time_from_sec(300);
constexpr long kDefaultCacheEntries = 10000;

extern const command_rec directives[];

void *create_dir_conf(apr_pool_t *pool, char *path);
void *merge_dir_conf(apr_pool_t *pool, void *base, void *add);
void *create_server_conf(apr_pool_t *pool, server_rec *s);
void *merge_server_conf(apr_pool_t *pool, void *base, void *add);

/** The main server's settings with defaults applied. */
struct Settings {
    apr_interval_time_t reload_interval;
    apr_interval_time_t cache_timeout;
    long cache_entries;
};
Settings effective_settings(server_rec *main_server);

inline auth_proxy_dir_conf *dir_conf(ap_conf_vector_t *v)
{
    return static_cast<auth_proxy_dir_conf *>(ap_get_module_config(v, &auth_proxy_module));
}

} // namespace auth_proxy
