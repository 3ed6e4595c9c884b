/**
 * mod_auth_proxy: proxy authentication (407 + Proxy-Authenticate, read from
 * Proxy-Authorization) for every request httpd proxies, reverse or forward,
 * against htpasswd files.
 *
 * This file holds the module struct and the life cycle: the runtime is built
 * per configuration cycle, user files are loaded before the MPM forks, and
 * each child runs its own reload thread.
 */
#include "auth_proxy_config.hpp"
#include "auth_proxy_hooks.hpp"
#include "auth_proxy_log.hpp"
#include "auth_proxy_runtime.hpp"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mpm_common.h>
#include <mod_auth.h>
#include <unixd.h>

#include <apr_strings.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

int pre_config(apr_pool_t *pconf, apr_pool_t *, apr_pool_t *) noexcept
{
    try {
        create_runtime(pconf);
        return OK;
    }
    catch (const std::exception &e) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, nullptr, APXLOGNO(03001)
                     "could not initialise: %s", e.what());
    }
    catch (...) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, nullptr, APXLOGNO(03001) "could not initialise");
    }
    return HTTP_INTERNAL_SERVER_ERROR;
}

bool is_prefix(const char *prefix, const char *path)
{
    return prefix != nullptr && path != nullptr && std::strncmp(prefix, path, std::strlen(prefix)) == 0;
}

/** An AuthUserFile that the scope inherits: server level, or an enclosing section. */
bool user_file_reaches(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    for (server_rec *s : {scope.server, main_server}) {
        const DirConfig *defaults = dir_conf(s->lookup_defaults);
        if (defaults != nullptr && defaults->user_file != nullptr) {
            return true;
        }
    }
    for (const ScopeRecord &other : rt.scopes) {
        if (other.conf->user_file != nullptr && (other.server == scope.server || other.server == main_server) &&
            is_prefix(other.path, scope.path)) {
            return true;
        }
    }
    return false;
}

/**
 * Runs for `apachectl configtest` too: a ProxyBasic scope that no
 * AuthUserFile reaches would refuse every request with a 500.
 */
int check_config(apr_pool_t *, apr_pool_t *, apr_pool_t *, server_rec *s) noexcept
{
    try {
        const Runtime &rt = runtime();
        int status = OK;
        for (const ScopeRecord &scope : rt.scopes) {
            if (scope.conf->proxy_basic == 1 && scope.conf->user_file == nullptr &&
                !user_file_reaches(rt, scope, s)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, APXLOGNO(03002)
                             "AuthType ProxyBasic at %s (%s) has no AuthUserFile",
                             scope.where, scope.path != nullptr ? scope.path : "server level");
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        return status;
    }
    catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

/**
 * The directory where processes share user indexes: under the runtime dir,
 * owned by the User the children run as, 0700. Empty if it cannot be used
 * (then every process keeps a private index, as before).
 */
std::string prepare_shared_dir(apr_pool_t *pconf, server_rec *s)
{
    const char *dir = ap_runtime_dir_relative(pconf, "auth_proxy");
    const char *failed = nullptr;
    if (dir == nullptr) {
        failed = "no runtime directory";
    }
    else if (::mkdir(dir, 0700) != 0 && errno != EEXIST) {
        failed = "mkdir";
    }
    else {
        struct stat st;
        if (::lstat(dir, &st) != 0) {
            failed = "lstat";
        }
        else if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            failed = "not a directory";
        }
        else if (::geteuid() == 0 &&
                 ::chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
            failed = "chown";
        }
        else if (::chmod(dir, 0700) != 0) {
            failed = "chmod";
        }
    }
    if (failed != nullptr) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, APXLOGNO(03005)
                     "cannot share user file indexes through %s (%s); every process keeps a private copy",
                     dir != nullptr ? dir : "(none)", failed);
        return std::string();
    }
    return dir;
}

/**
 * Builds the cache and loads every user file, in the parent, before the fork.
 *
 * With a shared directory the parent builds each file's index file there
 * and then lets go of it: every child maps that file when it starts (an
 * mmap and O(users) checks, no parsing), so the page cache holds one copy
 * for the whole server, and after a reload the old index is gone as soon as
 * the children have moved on, instead of staying mapped by a parent that
 * serves no requests. Without one (or with AuthProxyReloadInterval 0, where
 * children never look at the file again) the parent keeps its index and the
 * children inherit its pages.
 */
int post_config(apr_pool_t *pconf, apr_pool_t *, apr_pool_t *, server_rec *s) noexcept
{
    try {
        Runtime &rt = runtime();
        rt.server = s;
        const ServerConfig settings = effective_settings(s);
        rt.cache = std::make_unique<CredentialCache>(
            static_cast<std::size_t>(settings.cache_entries),
            std::chrono::microseconds(settings.cache_timeout_us), random_cache_secret());
        rt.files.set_shared_dir(prepare_shared_dir(pconf, s));
        rt.files.refresh_all(server_logger(s));
        if (settings.reload_interval_us > 0) {
            rt.files.release_shared_indexes();
        }
        return OK;
    }
    catch (const std::exception &e) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, APXLOGNO(03003) "could not start: %s", e.what());
    }
    catch (...) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, APXLOGNO(03003) "could not start");
    }
    return HTTP_INTERNAL_SERVER_ERROR;
}

/**
 * The parent's maintenance tick (about every ten seconds). Without a shared
 * directory it keeps its private copy of the files current, so children
 * forked later inherit a fresh index and share its pages instead of each
 * reading the file again. With one there is nothing to keep: children map
 * the shared index.
 */
int monitor(apr_pool_t *, server_rec *s) noexcept
{
    try {
        Runtime &rt = runtime();
        if (effective_settings(s).reload_interval_us > 0 && !rt.files.sharing()) {
            rt.files.refresh_all(server_logger(s));
        }
    }
    catch (...) {
        // The children check the files themselves; the parent only helps.
    }
    return DECLINED;
}

apr_status_t stop_watcher(void *data)
{
    static_cast<Runtime *>(data)->watcher.reset();
    return APR_SUCCESS;
}

/**
 * Each child keeps the files current, off the request path; after a change
 * one process builds the shared index and the others map it.
 */
void child_init(apr_pool_t *pchild, server_rec *s) noexcept
{
    try {
        Runtime &rt = runtime();
        const ServerConfig settings = effective_settings(s);
        // The parent loaded the files as root; this child serves as the User.
        rt.files.check_readable_all(server_logger(s));
        if (settings.reload_interval_us <= 0 || rt.files.size() == 0) {
            return;
        }
        // Map the index the parent shared (or, without sharing, catch up on
        // a change since the parent's last look) before serving.
        rt.files.refresh_all(server_logger(s));
        const auto interval = std::chrono::milliseconds(std::max<std::int64_t>(1, settings.reload_interval_us / 1000));
        rt.watcher = std::make_unique<FileWatcher>(rt.files, interval, server_logger(s));
        apr_pool_cleanup_register(pchild, &rt, stop_watcher, apr_pool_cleanup_null);
    }
    catch (const std::exception &e) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, APXLOGNO(03004)
                     "could not start the user file reload thread: %s; files are not reloaded", e.what());
    }
    catch (...) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, APXLOGNO(03004)
                     "could not start the user file reload thread; files are not reloaded");
    }
}

void register_hooks(apr_pool_t *) noexcept
{
    ap_hook_pre_config(pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_monitor(monitor, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_authn(check_authn, nullptr, nullptr, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(note_auth_failure, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(restore_challenge, nullptr, nullptr, APR_HOOK_MIDDLE);
    // After mod_env/mod_rewrite set Proxy-Chain-Auth and mod_dir (LAST) redirected.
    ap_hook_fixups(keep_proxy_credentials, nullptr, nullptr, APR_HOOK_REALLY_LAST);
}

} // namespace

} // namespace auth_proxy

extern "C" {

module AP_MODULE_DECLARE_DATA auth_proxy_module = {
    STANDARD20_MODULE_STUFF,
    auth_proxy::create_dir_conf,
    auth_proxy::merge_dir_conf,
    auth_proxy::create_server_conf,
    auth_proxy::merge_server_conf,
    auth_proxy::directives,
    auth_proxy::register_hooks,
    AP_MODULE_FLAG_NONE,
};

} // extern "C"
