#include "auth_proxy_keytabs.hpp"

#include "auth_proxy_log.hpp"
#include "auth_proxy_runtime.hpp"
#include "auth_proxy_config.hpp"

#include <http_config.h>
#include <http_log.h>
#include <unixd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/** Every AuthProxyKeytab of the configuration: in sections, and at server level. */
std::set<std::string> keytab_paths(const Runtime &rt, server_rec *main_server)
{
    std::set<std::string> paths;
    for (const ScopeRecord &scope : rt.scopes) {
        if (scope.conf->keytab_path != nullptr) {
            paths.insert(scope.conf->keytab_path);
        }
    }
    for (server_rec *s = main_server; s != nullptr; s = s->next) {
        const DirConfig *defaults = dir_conf(s->lookup_defaults);
        if (defaults != nullptr && defaults->keytab_path != nullptr) {
            paths.insert(defaults->keytab_path);
        }
    }
    return paths;
}

/**
 * The replay cache's directory: the User's own (the children write the
 * cache), under the runtime directory, which only root can write to.
 */
bool prepare_replay_cache(Runtime &rt, apr_pool_t *pconf, server_rec *s)
{
    const char *dir = ap_runtime_dir_relative(pconf, "auth_proxy_replay");
    if (::mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, errno, s, APXLOGNO(03031)
                     "cannot make the Kerberos replay cache directory %s", dir);
        return false;
    }
    struct stat st{};
    if (::lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, errno, s, APXLOGNO(03031)
                     "the Kerberos replay cache directory %s is not a directory", dir);
        return false;
    }
    if (::geteuid() == 0 &&
        (::chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0 || ::chmod(dir, 0700) != 0)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, errno, s, APXLOGNO(03031)
                     "cannot give the Kerberos replay cache directory %s to the User", dir);
        return false;
    }
    rt.replay_cache = std::string("file2:") + dir + "/negotiate.rcache2";
    return true;
}

} // namespace

bool check_keytabs(const Runtime &rt, server_rec *s) noexcept
{
    try {
        bool usable = true;
        for (const std::string &path : keytab_paths(rt, s)) {
            std::string error;
            if (!ServiceKeys::load(path, error)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, APXLOGNO(03030) "AuthProxyKeytab: %s",
                             error.c_str());
                usable = false;
            }
        }
        return usable;
    }
    catch (...) {
        return false;
    }
}

bool load_keytabs(Runtime &rt, apr_pool_t *pconf, server_rec *s) noexcept
{
    try {
        const std::set<std::string> paths = keytab_paths(rt, s);
        if (paths.empty()) {
            return true;
        }
        for (const std::string &path : paths) {
            std::string error;
            std::unique_ptr<ServiceKeys> keys = ServiceKeys::load(path, error);
            if (!keys) {
                // The error names the file.
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, APXLOGNO(03030) "AuthProxyKeytab: %s",
                             error.c_str());
                return false;
            }
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, APXLOGNO(03032) "AuthProxyKeytab %s: %s", path.c_str(),
                         keys->summary().c_str());
            rt.keytabs[path] = std::move(keys);
        }
        return prepare_replay_cache(rt, pconf, s);
    }
    catch (const std::exception &e) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, APXLOGNO(03030)
                     "AuthProxyKeytab: %s", e.what());
    }
    catch (...) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, APXLOGNO(03030) "AuthProxyKeytab: cannot read");
    }
    return false;
}

} // namespace auth_proxy
