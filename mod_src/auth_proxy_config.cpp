#include "auth_proxy_config.hpp"

#include "auth_proxy_providers.hpp"
#include "auth_proxy_runtime.hpp"

#include "auth_proxy/scheme/registry.hpp"
#include "auth_proxy/throttle/client_address.hpp"

#include <ap_provider.h>
#include <ap_socache.h>
#include <http_core.h>
#include <http_log.h>

#include <apr_strings.h>

#include <cstring>
#include <string>
#include <new>
#include <type_traits>

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
void record_scope(cmd_parms *cmd, DirConfig *conf)
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
 * which scopes are ours, and with which scheme, for the configtest check.
 */
const char *set_auth_type(cmd_parms *cmd, void *dconf, const char *arg)
{
    auto *conf = static_cast<DirConfig *>(dconf);
    conf->scheme = scheme_for_auth_type(arg);
    conf->auth_type_set = 1;
    if (conf->scheme == nullptr) {
        if (const Scheme *near = scheme_nearly_named(arg)) {
            // Otherwise only the first request finds out (500, AH01796).
            return apr_psprintf(cmd->pool, "AuthType %s: no module provides this auth type; did you mean %.*s?",
                                arg, static_cast<int>(near->auth_type().size()), near->auth_type().data());
        }
        return nullptr;
    }
    record_scope(cmd, conf);
    return nullptr;
}

/** AuthName, mod_authn_core's too: seen here so that configtest can say a scope of ours lacks one. */
const char *set_auth_name(cmd_parms *cmd, void *dconf, const char *)
{
    auto *conf = static_cast<DirConfig *>(dconf);
    conf->auth_name = 1;
    record_scope(cmd, conf);
    return nullptr;
}

/**
 * AuthProxyChallenge auto|proxy: "proxy" makes every request of the scope
 * use Proxy-Authorization and 407, for requests httpd decides to proxy only
 * after authentication (a RewriteRule [P] in <Location>/<Directory>, which
 * mod_rewrite applies in its fixup; SetHandler "proxy:...", which mod_proxy
 * takes up in the handler phase).
 */
const char *set_challenge(cmd_parms *cmd, void *dconf, const char *arg)
{
    auto *conf = static_cast<DirConfig *>(dconf);
    if (strcasecmp(arg, "proxy") == 0) {
        conf->always_proxy = 1;
    }
    else if (strcasecmp(arg, "auto") == 0) {
        conf->always_proxy = 0;
    }
    else {
        return apr_psprintf(cmd->pool, "AuthProxyChallenge: '%s' is neither 'auto' nor 'proxy'", arg);
    }
    return nullptr;
}

/**
 * AuthProxyProvider name...: where users are looked up, in order, like
 * AuthBasicProvider. "file" is this module's indexed AuthUserFile; any other
 * name is an httpd authn provider that can check passwords (dbm, dbd, ldap,
 * anon, socache, an <AuthnProviderAlias>), which must be loaded (or the
 * alias defined) before the directive, as for AuthBasicProvider.
 */
const char *set_providers(cmd_parms *cmd, void *dconf, const char *args)
{
    auto *conf = static_cast<DirConfig *>(dconf);
    const char *list = nullptr;
    std::size_t count = 0;
    for (const char *name = ap_getword_conf(cmd->temp_pool, &args); *name != '\0';
         name = ap_getword_conf(cmd->temp_pool, &args)) {
        if (strcasecmp(name, kFileProvider) == 0) {
            name = kFileProvider;
        }
        else if (strcasecmp(name, kKerberosProvider) == 0) {
            name = kKerberosProvider; // ours, ahead of any authn provider of that name
        }
        else if (find_authn_provider(name) == nullptr) {
            if (const char *modules = provider_modules(name)) {
                return apr_psprintf(cmd->pool,
                                    "AuthProxyProvider: no authn provider '%s' that checks passwords "
                                    "(load %s before this directive)",
                                    name, modules);
            }
            return apr_psprintf(cmd->pool,
                                "AuthProxyProvider: no authn provider '%s' that checks passwords (load the "
                                "module that provides it, or define <AuthnProviderAlias ... %s>, before this "
                                "directive)",
                                name, name);
        }
        if (++count > kMaxProviders) {
            return apr_psprintf(cmd->pool, "AuthProxyProvider: at most %d providers", static_cast<int>(kMaxProviders));
        }
        list = list == nullptr ? apr_pstrdup(cmd->pool, name) : apr_pstrcat(cmd->pool, list, " ", name, nullptr);
    }
    if (list == nullptr) {
        return "AuthProxyProvider: name at least one provider";
    }
    conf->providers = list;
    record_scope(cmd, conf);
    return nullptr;
}

/** AuthUserFile, shared with mod_authn_file when that is loaded. */
const char *set_user_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    auto *conf = static_cast<DirConfig *>(dconf);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (path == nullptr) {
        return apr_pstrcat(cmd->pool, "Invalid AuthUserFile path ", arg, nullptr);
    }
    conf->user_file_path = path;
    Runtime &rt = runtime();
    if (cmd->pool != rt.pconf) {
        // .htaccess: looked up when a request of one of our schemes uses it, so that
        // files of other auth types never enter the registry.
        return nullptr;
    }
    try {
        // A dormant entry: nothing is read until a scope of ours uses it.
        conf->user_file = &rt.files.get(path);
    }
    catch (const std::exception &e) {
        return apr_pstrcat(cmd->pool, "AuthUserFile ", path, ": ", e.what(), nullptr);
    }
    record_scope(cmd, conf);
    return nullptr;
}

/**
 * AuthProxyKeytab: read by the parent, as root, at start (see
 * ServiceKeys), so only the main configuration may name one: never a
 * .htaccess file, whose author could have root read a file for them.
 */
const char *set_keytab(cmd_parms *cmd, void *dconf, const char *arg)
{
    auto *conf = static_cast<DirConfig *>(dconf);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (path == nullptr) {
        return apr_pstrcat(cmd->pool, "Invalid AuthProxyKeytab path ", arg, nullptr);
    }
    conf->keytab_path = path;
    record_scope(cmd, conf);
    return nullptr;
}

const char *set_local_name(cmd_parms *, void *dconf, int on)
{
    static_cast<DirConfig *>(dconf)->local_name = on ? 1 : 0;
    return nullptr;
}

const char *set_connection_bound(cmd_parms *, void *dconf, int on)
{
    static_cast<DirConfig *>(dconf)->connection_bound = on ? 1 : 0;
    return nullptr;
}

const char *set_seconds(cmd_parms *cmd, const char *arg, std::int64_t &out)
{
    if (!parse_seconds(arg, out)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds from 0 to %ld (e.g. 300 or 0.5)",
                            cmd->cmd->name, arg, kMaxDirectiveSeconds);
    }
    return nullptr;
}

ServerConfig *main_server_conf(cmd_parms *cmd)
{
    return static_cast<ServerConfig *>(
        ap_get_module_config(cmd->server->module_config, &auth_proxy_module));
}

const char *set_reload_interval(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    return set_seconds(cmd, arg, main_server_conf(cmd)->reload_interval_us);
}

const char *set_cache_timeout(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    return set_seconds(cmd, arg, main_server_conf(cmd)->cache_timeout_us);
}

/** A server-wide directive: the main server's record, or the context error. */
const char *global_only(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

const char *set_throttle(cmd_parms *cmd, void *, int on)
{
    if (const char *err = global_only(cmd)) {
        return err;
    }
    main_server_conf(cmd)->throttle = on ? 1 : 0;
    return nullptr;
}

const char *set_count_in(cmd_parms *cmd, const char *arg, long min, long max, long &out)
{
    if (const char *err = global_only(cmd)) {
        return err;
    }
    if (!parse_count(arg, max, out) || out < min) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a count from %ld to %ld", cmd->cmd->name, arg, min, max);
    }
    return nullptr;
}

const char *set_throttle_failures(cmd_parms *cmd, void *, const char *arg)
{
    return set_count_in(cmd, arg, 1, 1000000, main_server_conf(cmd)->throttle_failures);
}

const char *set_throttle_user_failures(cmd_parms *cmd, void *, const char *arg)
{
    return set_count_in(cmd, arg, 0, 1000000, main_server_conf(cmd)->throttle_user_failures);
}

const char *set_throttle_entries(cmd_parms *cmd, void *, const char *arg)
{
    return set_count_in(cmd, arg, 16, 10000000, main_server_conf(cmd)->throttle_entries);
}

const char *set_verify_limit(cmd_parms *cmd, void *, const char *arg)
{
    return set_count_in(cmd, arg, 1, VerifyLimit::kMaxSlots, main_server_conf(cmd)->verify_limit);
}

const char *set_verify_wait(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = global_only(cmd)) {
        return err;
    }
    std::int64_t us = 0;
    if (!parse_seconds(arg, us) || us > kMaxVerifyWaitSeconds * 1000000LL) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds from 0 to %ld", cmd->cmd->name, arg,
                            kMaxVerifyWaitSeconds);
    }
    main_server_conf(cmd)->verify_wait_us = us;
    return nullptr;
}

const char *set_throttle_prefix56_failures(cmd_parms *cmd, void *, const char *arg)
{
    return set_count_in(cmd, arg, 0, kMaxThrottleCount, main_server_conf(cmd)->throttle_prefix56_failures);
}

const char *set_throttle_prefix48_failures(cmd_parms *cmd, void *, const char *arg)
{
    return set_count_in(cmd, arg, 0, kMaxThrottleCount, main_server_conf(cmd)->throttle_prefix48_failures);
}

/** A throttle period: at least one second. */
const char *set_period(cmd_parms *cmd, const char *arg, std::int64_t &out)
{
    if (const char *err = global_only(cmd)) {
        return err;
    }
    if (const char *err = set_seconds(cmd, arg, out)) {
        return err;
    }
    if (out < 1000000) {
        return apr_psprintf(cmd->pool, "%s: '%s' is shorter than one second", cmd->cmd->name, arg);
    }
    return nullptr;
}

const char *set_throttle_window(cmd_parms *cmd, void *, const char *arg)
{
    return set_period(cmd, arg, main_server_conf(cmd)->throttle_window_us);
}

const char *set_throttle_lockout(cmd_parms *cmd, void *, const char *arg)
{
    return set_period(cmd, arg, main_server_conf(cmd)->throttle_lockout_us);
}

/** AuthProxyThrottleExempt block...: checked here, parsed again at start into an AddressList. */
const char *add_throttle_exempt(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = global_only(cmd)) {
        return err;
    }
    AddressList check;
    std::string error;
    if (!check.add(arg, error)) {
        return apr_pstrcat(cmd->pool, "AuthProxyThrottleExempt: ", error.c_str(), nullptr);
    }
    ServerConfig *conf = main_server_conf(cmd);
    conf->throttle_exempt = conf->throttle_exempt == nullptr
                                ? apr_pstrdup(cmd->pool, arg)
                                : apr_pstrcat(cmd->pool, conf->throttle_exempt, " ", arg, nullptr);
    return nullptr;
}

/** AuthProxyThrottleSOCache provider[:args]: the provider must be loaded already, as for AuthnCacheSOCache. */
const char *set_throttle_socache(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = global_only(cmd)) {
        return err;
    }
    const char *colon = std::strchr(arg, ':');
    const char *name = colon != nullptr ? apr_pstrmemdup(cmd->pool, arg, static_cast<apr_size_t>(colon - arg)) : arg;
    if (ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION) == nullptr) {
        return apr_psprintf(cmd->pool,
                            "AuthProxyThrottleSOCache: unknown socache provider '%s' (load mod_socache_%s first)",
                            name, name);
    }
    main_server_conf(cmd)->throttle_socache = apr_pstrdup(cmd->pool, arg);
    return nullptr;
}

const char *set_cache_entries(cmd_parms *cmd, void *, const char *arg)
{
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    if (!parse_count(arg, 100000000L, main_server_conf(cmd)->cache_entries)) {
        return apr_psprintf(cmd->pool, "AuthProxyCacheEntries: '%s' is not a count from 0 to 100000000", arg);
    }
    return nullptr;
}

} // namespace

const command_rec directives[] = {
    {"AuthType", handler(set_auth_type), nullptr, OR_AUTHCFG, TAKE1,
     "an HTTP authorization type (e.g., \"Basic\")"},
    {"AuthName", handler(set_auth_name), nullptr, OR_AUTHCFG, TAKE1,
     "the authentication realm (e.g. \"Members Only\")"},
    {"AuthUserFile", handler(set_user_file), nullptr, OR_AUTHCFG, TAKE1,
     "text file containing user IDs and passwords"},
    {"AuthProxyProvider", handler(set_providers), nullptr, OR_AUTHCFG, RAW_ARGS,
     "where users are looked up, in order: file (the indexed AuthUserFile, the default) or an authn provider "
     "(dbm, dbd, ldap, an AuthnProviderAlias name, ...)"},
    {"AuthProxyChallenge", handler(set_challenge), nullptr, OR_AUTHCFG, TAKE1,
     "auto: 407/Proxy-Authorization for proxied requests, 401/Authorization for others (default); "
     "proxy: 407/Proxy-Authorization for every request of the scope"},
    {"AuthProxyKeytab", handler(set_keytab), nullptr, ACCESS_CONF, TAKE1,
     "the keytab holding the proxy's HTTP/<host> keys for AuthType ProxyNegotiate, read as root at start"},
    {"AuthProxyLocalName", handler(set_local_name), nullptr, OR_AUTHCFG, FLAG,
     "On: a Kerberos principal of the default realm is the user by its local name (alice@REALM is alice); "
     "Off: the user is the whole principal (default On)"},
    {"AuthProxyConnectionBound", handler(set_connection_bound), nullptr, OR_AUTHCFG, FLAG,
     "On: a connection whose Negotiate token was accepted stays authenticated for its later requests without "
     "one (HTTP/1.x); Off: every request needs its own token (default On)"},
    {"AuthProxyReloadInterval", handler(set_reload_interval), nullptr, RSRC_CONF, TAKE1,
     "seconds between checks of the user files, besides inotify notices (0: never reload; default 0.5)"},
    {"AuthProxyCacheTimeout", handler(set_cache_timeout), nullptr, RSRC_CONF, TAKE1,
     "seconds a verified credential is remembered (0: no cache; default 300)"},
    {"AuthProxyCacheEntries", handler(set_cache_entries), nullptr, RSRC_CONF, TAKE1,
     "most verified credentials remembered, server-wide (0: no cache; default 10000)"},
    {"AuthProxyThrottle", handler(set_throttle), nullptr, RSRC_CONF, FLAG,
     "On: lock out client addresses that make too many distinct failed logins (default On)"},
    {"AuthProxyThrottleFailures", handler(set_throttle_failures), nullptr, RSRC_CONF, TAKE1,
     "distinct failed logins from one address within the window that start a lockout (default 20)"},
    {"AuthProxyThrottleWindow", handler(set_throttle_window), nullptr, RSRC_CONF, TAKE1,
     "seconds over which failed logins are counted (default 600)"},
    {"AuthProxyThrottleLockout", handler(set_throttle_lockout), nullptr, RSRC_CONF, TAKE1,
     "seconds a locked-out address (or user) is answered 429 (default 600)"},
    {"AuthProxyThrottleUserFailures", handler(set_throttle_user_failures), nullptr, RSRC_CONF, TAKE1,
     "distinct failed logins for one user, from any address, that lock the user out (default 0: never)"},
    {"AuthProxyThrottleExempt", handler(add_throttle_exempt), nullptr, RSRC_CONF, ITERATE,
     "addresses or blocks (10.0.0.0/8, 2001:db8::/32) never counted or locked out"},
    {"AuthProxyThrottlePrefix56Failures", handler(set_throttle_prefix56_failures), nullptr, RSRC_CONF, TAKE1,
     "distinct failed logins from all of one IPv6 /56 within the window that lock it out (default 3 times "
     "AuthProxyThrottleFailures; 0: not counted)"},
    {"AuthProxyThrottlePrefix48Failures", handler(set_throttle_prefix48_failures), nullptr, RSRC_CONF, TAKE1,
     "distinct failed logins from all of one IPv6 /48 within the window that lock it out (default 10 times "
     "AuthProxyThrottleFailures; 0: not counted)"},
    {"AuthProxyThrottleEntries", handler(set_throttle_entries), nullptr, RSRC_CONF, TAKE1,
     "addresses and users the throttle keeps counters for, server-wide (default 16384)"},
    {"AuthProxyThrottleSOCache", handler(set_throttle_socache), nullptr, RSRC_CONF, TAKE1,
     "keep the throttle's counters in this socache (e.g. redis:host:port), shared with other servers"},
    {"AuthProxyVerifyLimit", handler(set_verify_limit), nullptr, RSRC_CONF, TAKE1,
     "hash verifications that may run at once, server-wide (default: one fewer than the cores, at least 1)"},
    {"AuthProxyVerifyWait", handler(set_verify_wait), nullptr, RSRC_CONF, TAKE1,
     "seconds a request waits for a verification slot before it is answered 503 (default 2)"},
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr},
};

/** A pool-allocated copy; the records are plain data, so no cleanup is needed. */
template <typename T>
void *in_pool(apr_pool_t *pool, const T &value)
{
    static_assert(std::is_trivially_destructible<T>::value, "pool memory is never destructed");
    return new (apr_palloc(pool, sizeof(T))) T(value);
}

void *create_dir_conf(apr_pool_t *pool, char *)
{
    DirConfig conf;
    conf.scope = new_scope_id();
    return in_pool(pool, conf);
}

void *merge_dir_conf(apr_pool_t *pool, void *base, void *add)
{
    return in_pool(pool, merge(*static_cast<const DirConfig *>(base), *static_cast<const DirConfig *>(add)));
}

void *create_server_conf(apr_pool_t *pool, server_rec *)
{
    return in_pool(pool, ServerConfig{});
}

void *merge_server_conf(apr_pool_t *pool, void *base, void *add)
{
    return in_pool(pool, merge(*static_cast<const ServerConfig *>(base), *static_cast<const ServerConfig *>(add)));
}

ServerConfig effective_settings(server_rec *main_server)
{
    return with_defaults(*static_cast<const ServerConfig *>(
        ap_get_module_config(main_server->module_config, &auth_proxy_module)));
}

} // namespace auth_proxy
