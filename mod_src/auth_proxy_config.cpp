#include "auth_proxy_config.hpp"

#include "auth_proxy_runtime.hpp"

#include <http_core.h>
#include <http_log.h>

#include <apr_strings.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/** The one place a typed handler becomes httpd's untyped cmd_func. */
template <typename F>
cmd_func handler(F f)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-function-type"
    return reinterpret_cast<cmd_func>(f);
#pragma GCC diagnostic pop
}

const char *where(cmd_parms *cmd)
{
    if (cmd->directive == nullptr) {
        return "(unknown)";
    }
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename, cmd->directive->line_num);
}

/** Only sections of the main configuration are checked, not .htaccess. */
void record_scope(cmd_parms *cmd, auth_proxy_dir_conf *conf)
{
    Runtime &rt = runtime();
    if (cmd->pool != rt.pconf) {
        return;
    }
    for (const ScopeRecord &rec : rt.scopes) {
        if (rec.conf == conf) {
            return;
        }
    }
    rt.scopes.push_back(ScopeRecord{cmd->server, cmd->path, where(cmd), conf});
}

/**
 * AuthType is mod_authn_core's directive; httpd hands it to every module
 * that declares it (ap_walk_config_sub), so we see it too and remember
 * which scopes are ProxyBasic for the configtest check.
 */
const char *set_auth_type(cmd_parms *cmd, void *dconf, const char *arg)
{
    auto *conf = static_cast<auth_proxy_dir_conf *>(dconf);
    conf->proxy_basic = strcasecmp(arg, "ProxyBasic") == 0 ? 1 : 0;
    if (conf->proxy_basic == 1) {
        record_scope(cmd, conf);
    }
    return nullptr;
}

/** AuthUserFile, shared with mod_authn_file when that is loaded. */
const char *set_user_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    auto *conf = static_cast<auth_proxy_dir_conf *>(dconf);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (path == nullptr) {
        return apr_pstrcat(cmd->pool, "Invalid AuthUserFile path ", arg, nullptr);
    }
    try {
        conf->user_file_path = path;
        conf->user_file = &runtime().files.get(path);
    }
    catch (const std::exception &e) {
        return apr_pstrcat(cmd->pool, "AuthUserFile ", path, ": ", e.what(), nullptr);
    }
    record_scope(cmd, conf);
    return nullptr;
}

/** Parses "<seconds>" with an optional fraction ("0.25"); 0 allowed. */
const char *parse_seconds(cmd_parms *cmd, const char *arg, apr_interval_time_t &out)
{
    errno = 0;
    char *end = nullptr;
    const double seconds = std::strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !std::isfinite(seconds) || seconds < 0 ||
        seconds > 86400.0 * 365) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds (e.g. 300 or 0.5)",
                            cmd->cmd->name, arg);
    }
    out = static_cast<apr_interval_time_t>(std::llround(seconds * APR_USEC_PER_SEC));
    return nullptr;
}

auth_proxy_server_conf *main_server_conf(cmd_parms *cmd)
{
    return static_cast<auth_proxy_server_conf *>(
        ap_get_module_config(cmd->server->module_config, &auth_proxy_module));
}

const char *set_reload_interval(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    return parse_seconds(cmd, arg, main_server_conf(cmd)->reload_interval);
}

const char *set_cache_timeout(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    return parse_seconds(cmd, arg, main_server_conf(cmd)->cache_timeout);
}

const char *set_cache_entries(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    errno = 0;
    char *end = nullptr;
    const long n = std::strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || n < 0 || n > 100000000) {
        return apr_psprintf(cmd->pool, "AuthProxyCacheEntries: '%s' is not a count from 0 to 100000000", arg);
    }
    main_server_conf(cmd)->cache_entries = n;
    return nullptr;
}

template <typename T>
T pick(T add, T base, T unset)
{
    return add != unset ? add : base;
}

} // namespace

const command_rec directives[] = {
    {"AuthType", handler(set_auth_type), nullptr, OR_AUTHCFG, TAKE1,
     "an HTTP authorization type (e.g., \"ProxyBasic\")"},
    {"AuthUserFile", handler(set_user_file), nullptr, OR_AUTHCFG, TAKE1,
     "text file containing user IDs and passwords"},
    {"AuthProxyReloadInterval", handler(set_reload_interval), nullptr, RSRC_CONF, TAKE1,
     "seconds between checks of the user files for changes (0: never reload; default 0.5)"},
    {"AuthProxyCacheTimeout", handler(set_cache_timeout), nullptr, RSRC_CONF, TAKE1,
     "seconds a verified credential is remembered (0: no cache; default 300)"},
    {"AuthProxyCacheEntries", handler(set_cache_entries), nullptr, RSRC_CONF, TAKE1,
     "most verified credentials remembered per process (0: no cache; default 10000)"},
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr},
};

void *create_dir_conf(apr_pool_t *pool, char *)
{
    auto *conf = static_cast<auth_proxy_dir_conf *>(apr_pcalloc(pool, sizeof(auth_proxy_dir_conf)));
    conf->user_file_path = nullptr;
    conf->user_file = nullptr;
    conf->proxy_basic = -1;
    return conf;
}

void *merge_dir_conf(apr_pool_t *pool, void *base_conf, void *add_conf)
{
    const auto *base = static_cast<const auth_proxy_dir_conf *>(base_conf);
    const auto *add = static_cast<const auth_proxy_dir_conf *>(add_conf);
    auto *conf = static_cast<auth_proxy_dir_conf *>(apr_pcalloc(pool, sizeof(auth_proxy_dir_conf)));
    // The file path and its registry entry travel together.
    if (add->user_file_path != nullptr) {
        conf->user_file_path = add->user_file_path;
        conf->user_file = add->user_file;
    }
    else {
        conf->user_file_path = base->user_file_path;
        conf->user_file = base->user_file;
    }
    conf->proxy_basic = pick(add->proxy_basic, base->proxy_basic, -1);
    return conf;
}

void *create_server_conf(apr_pool_t *pool, server_rec *)
{
    auto *conf = static_cast<auth_proxy_server_conf *>(apr_pcalloc(pool, sizeof(auth_proxy_server_conf)));
    conf->reload_interval = -1;
    conf->cache_timeout = -1;
    conf->cache_entries = -1;
    return conf;
}

void *merge_server_conf(apr_pool_t *pool, void *base_conf, void *add_conf)
{
    const auto *base = static_cast<const auth_proxy_server_conf *>(base_conf);
    const auto *add = static_cast<const auth_proxy_server_conf *>(add_conf);
    auto *conf = static_cast<auth_proxy_server_conf *>(apr_pcalloc(pool, sizeof(auth_proxy_server_conf)));
    conf->reload_interval = pick(add->reload_interval, base->reload_interval, apr_interval_time_t{-1});
    conf->cache_timeout = pick(add->cache_timeout, base->cache_timeout, apr_interval_time_t{-1});
    conf->cache_entries = pick(add->cache_entries, base->cache_entries, -1L);
    return conf;
}

Settings effective_settings(server_rec *main_server)
{
    const auto *conf = static_cast<const auth_proxy_server_conf *>(
        ap_get_module_config(main_server->module_config, &auth_proxy_module));
    Settings s;
    s.reload_interval = conf->reload_interval >= 0 ? conf->reload_interval : kDefaultReloadInterval;
    s.cache_timeout = conf->cache_timeout >= 0 ? conf->cache_timeout : kDefaultCacheTimeout;
    s.cache_entries = conf->cache_entries >= 0 ? conf->cache_entries : kDefaultCacheEntries;
    return s;
}

} // namespace auth_proxy
