/**
 * mod_auth_proxy: proxy authentication (407 + Proxy-Authenticate, read from
 * Proxy-Authorization) for every request httpd proxies, reverse or forward,
 * against htpasswd files.
 *
 * This file holds the module struct and the life cycle: the runtime is built
 * per configuration cycle, user files are loaded before the MPM forks, and
 * each child runs its own reload thread.
 */
#include "auth_proxy_builder.hpp"
#include "auth_proxy_config.hpp"
#include "auth_proxy_hooks.hpp"
#include "auth_proxy_keytabs.hpp"
#include "auth_proxy_log.hpp"
#include "auth_proxy_metrics.hpp"
#include "auth_proxy_runtime.hpp"
#include "auth_proxy_scopes.hpp"
#include "auth_proxy_socache.hpp"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mpm_common.h>
#include <ap_mpm.h>
#include <mod_auth.h>
#include <mod_status.h>
#include <unixd.h>
#include <util_mutex.h>

#include <apr_strings.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <csignal>
#include <new>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

int pre_config(apr_pool_t *pconf, apr_pool_t *, apr_pool_t *) noexcept
{
    try {
        create_runtime(pconf);
        // Only used with AuthProxyThrottleSOCache; registered so Mutex can name it.
        ap_mutex_register(pconf, SocacheThrottleStore::kMutexType, nullptr, APR_LOCK_DEFAULT, 0);
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

/**
 * Calls @p visit with each configuration @p scope inherits from: the
 * server-level settings of its server (and of the main server), and every
 * section of the same server whose path encloses it. Stops and returns true
 * as soon as @p visit does.
 */
template <typename Visit>
bool any_enclosing(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server, Visit visit)
{
    for (server_rec *s : {scope.server, main_server}) {
        DirConfig *defaults = dir_conf(s->lookup_defaults);
        if (defaults != nullptr && visit(*defaults)) {
            return true;
        }
    }
    for (const ScopeRecord &other : rt.scopes) {
        if ((other.server == scope.server || other.server == main_server) && is_prefix(other.path, scope.path) &&
            visit(*other.conf)) {
            return true;
        }
    }
    return false;
}

/** The AuthProxyProvider list in effect for @p scope (its own, or one it inherits; null: the default). */
const char *providers_of(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    const char *found = scope.conf->providers;
    if (found == nullptr) {
        any_enclosing(rt, scope, main_server, [&found](const DirConfig &c) {
            found = c.providers;
            return found != nullptr;
        });
    }
    return found;
}

/** An AuthUserFile that the scope inherits: server level, or an enclosing section. */
bool user_file_reaches(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    return any_enclosing(rt, scope, main_server, [](const DirConfig &c) { return c.user_file != nullptr; });
}

/** True if @p scope names AuthProxyKeytab or inherits one. */
bool keytab_reaches(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    return scope.conf->keytab_path != nullptr ||
           any_enclosing(rt, scope, main_server, [](const DirConfig &c) { return c.keytab_path != nullptr; });
}

/** True if @p scope sets AuthName or inherits one. */
bool auth_name_reaches(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    return scope.conf->auth_name == 1 ||
           any_enclosing(rt, scope, main_server, [](const DirConfig &c) { return c.auth_name == 1; });
}

/** True if @p scope answers 407 whether or not a request is proxied (AuthProxyChallenge proxy). */
bool always_proxy(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    if (scope.conf->always_proxy != -1) {
        return scope.conf->always_proxy == 1;
    }
    int found = -1;
    any_enclosing(rt, scope, main_server, [&found](const DirConfig &c) {
        found = c.always_proxy;
        return found != -1;
    });
    return found == 1;
}

void warn_of_unopenable_user_files(Runtime &rt, server_rec *s);

/**
 * Runs for `apachectl configtest` too, for what would otherwise show only
 * at the first request: a scope of ours whose scheme checks passwords and
 * that no AuthUserFile reaches (500 for everyone), one without AuthName
 * (500), and one without mod_proxy (nothing is proxied, so every request
 * gets 401).
 */
int check_config(apr_pool_t *, apr_pool_t *, apr_pool_t *, server_rec *s) noexcept
{
    try {
        Runtime &rt = runtime();
        const bool proxy_loaded = ap_find_linked_module("mod_proxy.c") != nullptr;
        int status = OK;
        for (const ScopeRecord &scope : rt.scopes) {
            const Scheme *scheme = scope.conf->scheme;
            if (scheme == nullptr) {
                continue;
            }
            const std::string name(scheme->auth_type());
            const char *type = name.c_str();
            const char *path = scope.path != nullptr ? scope.path : "server level";
            // Password stores are the scheme's own, or (beside another scheme) the ones it names.
            const char *providers = providers_of(rt, scope, s);
            const bool stores = scheme->checks_passwords() || providers != nullptr;
            if (stores && scope.conf->user_file == nullptr && uses_user_file(providers) &&
                !user_file_reaches(rt, scope, s)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, APXLOGNO(03002)
                             "AuthType %s at %s (%s) has no AuthUserFile", type, scope.where, path);
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
            if (scheme->uses_service_keys() && !keytab_reaches(rt, scope, s)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, APXLOGNO(03033)
                             "AuthType %s at %s (%s) has no AuthProxyKeytab: name the keytab with the proxy's "
                             "HTTP/<host> keys",
                             type, scope.where, path);
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
            if (lists_provider(providers_of(rt, scope, s), kKerberosProvider) && !keytab_reaches(rt, scope, s)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, APXLOGNO(03040)
                             "AuthType %s at %s (%s) uses AuthProxyProvider kerberos but has no AuthProxyKeytab: "
                             "the tickets the KDC gives for passwords are verified with the proxy's HTTP/<host> "
                             "keys",
                             type, scope.where, path);
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
            // The realm is what a password scheme's challenge names (Negotiate has none).
            const bool password_schemes = scheme->checks_passwords() || user_file_reaches(rt, scope, s) ||
                                          scope.conf->providers != nullptr;
            if (password_schemes && !auth_name_reaches(rt, scope, s)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, APXLOGNO(03020)
                             "AuthType %s at %s (%s) has no AuthName: add AuthName \"...\", the realm "
                             "the challenge names",
                             type, scope.where, path);
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
            if (!proxy_loaded && !always_proxy(rt, scope, s)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, APXLOGNO(03021)
                             "AuthType %s at %s (%s) needs mod_proxy: load mod_proxy and the module of "
                             "its scheme (mod_proxy_http), or set AuthProxyChallenge proxy",
                             type, scope.where, path);
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        if (status == OK && ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
            warn_of_unopenable_user_files(rt, s);
            if (!check_keytabs(rt, s)) {
                status = HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        return status;
    }
    catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

/** Whether @p conf's AuthType is one of our schemes. */
bool ours(const DirConfig &conf) noexcept
{
    return conf.auth_type_set == 1 && conf.scheme != nullptr;
}

/** The sections a scope of ours covers: its own, and those inside it (by path) in the same server. */
bool covered_by_ours(const Runtime &rt, const ScopeRecord &scope, server_rec *main_server)
{
    if (scope.conf->auth_type_set != -1) {
        return ours(*scope.conf);
    }
    return any_enclosing(rt, scope, main_server, ours);
}

/**
 * Marks the user files scopes of ours use, as far as the configuration
 * shows: only they are read, indexed, watched and logged about. A file that
 * only a request of ours reveals (.htaccess, unusual inheritance) is
 * activated when that request first uses it.
 */
void activate_our_files(Runtime &rt, server_rec *main_server)
{
    auto activate = [](const DirConfig &conf) {
        if (conf.user_file != nullptr) {
            conf.user_file->activate();
        }
        return false; // visit every enclosing configuration
    };
    for (server_rec *s = main_server; s != nullptr; s = s->next) {
        const DirConfig *defaults = dir_conf(s->lookup_defaults);
        if (defaults != nullptr && ours(*defaults)) {
            activate(*defaults);
        }
    }
    for (const ScopeRecord &scope : rt.scopes) {
        if (!covered_by_ours(rt, scope, main_server) || !uses_user_file(providers_of(rt, scope, main_server))) {
            continue;
        }
        if (scope.conf->user_file != nullptr) {
            activate(*scope.conf);
        }
        else {
            any_enclosing(rt, scope, main_server, activate); // the file comes from further out
        }
    }
}

/**
 * The index directory under the runtime dir, made by and for the parent's
 * identity: owned by root and readable by the server's Group when httpd
 * starts as root, so that nothing running as the User can write it. Logs
 * and leaves it unusable (private indexes) if it cannot be trusted.
 */
void prepare_index_directory(Runtime &rt, apr_pool_t *pconf, server_rec *s)
{
    const bool root = ::geteuid() == 0;
    const IndexOwnership owner{::geteuid(), root ? ap_unixd_config.group_id : ::getegid(),
                               static_cast<mode_t>(root ? 0750 : 0700), static_cast<mode_t>(root ? 0640 : 0600)};
    const char *runtime_dir = ap_runtime_dir_relative(pconf, "");
    std::string error;
    std::vector<std::string> notes;
    rt.index_dir = runtime_dir != nullptr
                       ? IndexDirectory::prepare(runtime_dir, "auth_proxy", owner, error, notes)
                       : IndexDirectory();
    for (const std::string &note : notes) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, APXLOGNO(03006) "%s", note.c_str());
    }
    if (!rt.index_dir.usable()) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, APXLOGNO(03005)
                     "cannot share user file indexes through %s/auth_proxy (%s); every process keeps a private copy",
                     runtime_dir != nullptr ? runtime_dir : "(no runtime directory)", error.c_str());
        return;
    }
    // What a crash or an older version left: temporary files, locks, and
    // indexes of files no scope of ours uses any more.
    std::vector<std::string> keep;
    for (const std::string &path : rt.files.paths()) {
        keep.push_back(index_file_name(path));
    }
    for (const std::string &name : rt.index_dir.remove_stale(keep)) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, APXLOGNO(03009) "removed stale %s/%s",
                     rt.index_dir.path().c_str(), name.c_str());
    }
}

/** The name of the User httpd's children run as ("User #33" names the uid). */
std::string user_name()
{
    const char *name = ap_unixd_config.user_name;
    if (name != nullptr && name[0] != '#') {
        return name;
    }
    const uid_t uid = ::geteuid() == 0 ? ap_unixd_config.user_id : ::geteuid();
    struct passwd entry;
    struct passwd *found = nullptr;
    char buffer[4096];
    if (::getpwuid_r(uid, &entry, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
        return found->pw_name;
    }
    return "uid " + std::to_string(uid);
}

/**
 * `apachectl configtest` only: says which of our scopes' user files the User
 * cannot open, as the server will find at start. A warning, not
 * a failure: the file may be put in place before the start, and without it
 * only its scopes fail (500), closed.
 */
void warn_of_unopenable_user_files(Runtime &rt, server_rec *s)
{
    activate_our_files(rt, s);
    const std::string name = user_name();
    std::unique_ptr<FileOpener> opener;
    std::string error;
    if (::geteuid() == 0 && ap_unixd_config.user_id != 0) {
        Identity who;
        who.uid = ap_unixd_config.user_id;
        who.gid = ap_unixd_config.group_id;
        who.name = name;
        who.groups = groups_of(name, who.gid, error);
        if (error.empty()) {
            opener = OpenerProcess::start(who, error);
        }
    }
    else {
        opener = std::make_unique<DirectOpener>(name);
    }
    if (!opener) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, nullptr, APXLOGNO(03022)
                     "cannot check the user files as %s: %s", name.c_str(), error.c_str());
        return;
    }
    for (const std::string &path : rt.files.paths()) {
        if (!rt.files.get(path).active()) {
            continue;
        }
        const OpenResult opened = opener->open(path);
        if (!opened.fd) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, nullptr, APXLOGNO(03023)
                         "AuthUserFile %s cannot be opened by %s: %s; requests of the scopes that use it will get "
                         "500 until it can",
                         path.c_str(), name.c_str(), errno_text(opened.error).c_str());
        }
    }
}

/** The MPM's request workers: threads per process times processes (prefork: processes). */
std::uint64_t request_workers() noexcept
{
    int threads = 1;
    int processes = 1;
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1) {
        threads = 1;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &processes) != APR_SUCCESS || processes < 1) {
        processes = 1;
    }
    return static_cast<std::uint64_t>(threads) * static_cast<std::uint64_t>(processes);
}

/** What the parent needs to start the opener again; lives in pconf. */
struct OpenerWatch {
    apr_pool_t *pconf;
    server_rec *server;
    Identity who;
    apr_proc_t proc; ///< the current opener: noted once in pconf, which kills it with the cycle
};

void watch_opener(OpenerWatch &w);

/** Starts the opener of @p w as its User and makes it the one user files are opened through. */
bool start_opener(OpenerWatch &w, std::string &error)
{
    Runtime &rt = runtime();
    std::unique_ptr<OpenerProcess> opener = OpenerProcess::start(w.who, error);
    if (!opener) {
        return false;
    }
    w.proc.pid = opener->pid();
    rt.files.set_opener(opener.get());
    rt.opener = std::move(opener); // the one replaced (if any) is unused from here: its socket closes
    watch_opener(w);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, w.server, APXLOGNO(02023) "user files are opened as %s by process %ld",
                 w.who.name.c_str(), static_cast<long>(w.proc.pid));
    return true;
}

/**
 * apr_proc_other_child callback: the opener died (the User can kill it,
 * being its owner). A new one takes over, and the builder, which holds the
 * old one's socket, is restarted to inherit the new one's.
 */
void opener_maintenance(int reason, void *data, apr_wait_t)
{
    auto *w = static_cast<OpenerWatch *>(data);
    if (reason == APR_OC_REASON_RESTART || reason == APR_OC_REASON_DEATH || reason == APR_OC_REASON_LOST) {
        apr_proc_other_child_unregister(w);
    }
    if (reason != APR_OC_REASON_DEATH && reason != APR_OC_REASON_LOST) {
        return; // a restart or stop: the next cycle starts its own, pconf ends this one
    }
    int state = AP_MPMQ_STOPPING;
    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS || state == AP_MPMQ_STOPPING) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->server, APXLOGNO(02024)
                 "the process that opens user files as %s (%ld) exited; starting a new one", w->who.name.c_str(),
                 static_cast<long>(w->proc.pid));
    try {
        std::string error;
        if (!start_opener(*w, error)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->server, APXLOGNO(02025)
                         "cannot start a new process that opens user files as %s: %s; changed user files "
                         "are refused until httpd restarts", w->who.name.c_str(), error.c_str());
            return;
        }
        const Runtime &rt = runtime();
        if (rt.builder != nullptr) {
            ::kill(rt.builder->pid, SIGTERM); // its maintenance starts a new one, with the new opener
        }
    }
    catch (...) {
        // Out of memory: the files stay refused, never read as root.
    }
}

void watch_opener(OpenerWatch &w)
{
    apr_proc_other_child_register(&w.proc, opener_maintenance, &w, nullptr, w.pconf);
}

/**
 * How user files are opened: when httpd starts as root and changes user,
 * by an opener process that has become the User, with the groups
 * initgroups() gives its children; otherwise with this process's own
 * rights, which are the User's. Logs and returns false if the opener
 * cannot be started: nothing is then read as root instead.
 */
bool start_user_opener(Runtime &rt, apr_pool_t *pconf, server_rec *s)
{
    const std::string name = user_name();
    rt.own_rights = std::make_unique<DirectOpener>(name);
    if (::geteuid() != 0 || ap_unixd_config.user_id == 0) {
        rt.files.set_opener(rt.own_rights.get());
        return true;
    }
    auto *w = new (apr_pcalloc(pconf, sizeof(OpenerWatch))) OpenerWatch{pconf, s, Identity{}, apr_proc_t{}};
    apr_pool_cleanup_register(pconf, w, [](void *data) -> apr_status_t {
        static_cast<OpenerWatch *>(data)->~OpenerWatch();
        return APR_SUCCESS;
    }, apr_pool_cleanup_null);
    std::string error;
    w->who.uid = ap_unixd_config.user_id;
    w->who.gid = ap_unixd_config.group_id;
    w->who.name = name;
    w->who.groups = groups_of(name, w->who.gid, error);
    if (!error.empty() || !start_opener(*w, error)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, APXLOGNO(02022)
                     "cannot start the process that opens user files as %s: %s", name.c_str(), error.c_str());
        return false;
    }
    // Ended with the configuration cycle; it also ends by itself once
    // every holder of its socket (this parent, the builder) has gone.
    apr_pool_note_subprocess(pconf, &w->proc, APR_KILL_AFTER_TIMEOUT);
    return true;
}

/** The throttle, over counters that survive graceful restarts (or a socache shared with other servers). */
void make_throttle(Runtime &rt, const ServerConfig &settings, apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    ThrottlePolicy policy;
    policy.enabled = settings.throttle == 1;
    if (!policy.enabled) {
        return;
    }
    policy.address_limit = static_cast<std::uint32_t>(settings.throttle_failures);
    policy.window = std::chrono::seconds(settings.throttle_window_us / 1000000);
    policy.lockout = std::chrono::seconds(settings.throttle_lockout_us / 1000000);
    policy.user_limit = static_cast<std::uint32_t>(settings.throttle_user_failures);
    policy.prefix56_limit = static_cast<std::uint32_t>(settings.throttle_prefix56_failures);
    policy.prefix48_limit = static_cast<std::uint32_t>(settings.throttle_prefix48_failures);
    if (settings.throttle_exempt != nullptr) {
        std::string error;
        const std::string list = settings.throttle_exempt;
        for (std::size_t at = 0; at < list.size();) {
            const std::size_t end = std::min(list.find(' ', at), list.size());
            if (end > at) {
                policy.exempt.add(std::string_view(list).substr(at, end - at), error); // checked by the directive
            }
            at = end + 1;
        }
    }
    const auto counters = static_cast<std::size_t>(settings.throttle_entries);
    const std::size_t failures = counters * 4; // a window's distinct failures outnumber the addresses
    const ThrottleMemory memory = retained_throttle_memory(counters, failures);
    rt.counters = std::make_unique<SharedCounterTable>(memory.counters, counters, memory.secret);
    rt.failures = std::make_unique<SharedKeySet>(memory.failures, failures, policy.window);
    ThrottleStore *store = rt.counters.get();
    if (settings.throttle_socache != nullptr) {
        rt.remote_counters =
            std::make_unique<SocacheThrottleStore>(settings.throttle_socache, *rt.counters, pconf, ptemp, s);
        store = rt.remote_counters.get();
    }
    rt.throttle = std::make_unique<Throttle>(std::move(policy), *store, *rt.failures, memory.secret);
}

/**
 * Builds the cache, the throttle and every user file of ours's index, in
 * the parent, before the fork.
 *
 * With an index directory the parent writes each file's index there and
 * lets go of it; children map it when they start, and a builder process
 * (root, like the parent) writes the index of every later version. Both
 * read user files only through the opener, with the User's rights. Without
 * one (or with AuthProxyReloadInterval 0, where children never look at the
 * file again) the parent keeps its index and the children inherit its pages.
 */
int post_config(apr_pool_t *pconf, apr_pool_t *, apr_pool_t *ptemp, server_rec *s) noexcept
{
    try {
        if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
            return OK; // httpd's trial run of the configuration: the real one follows
        }
        name_every_section(pconf, s);
        Runtime &rt = runtime();
        rt.server = s;
        const ServerConfig settings = effective_settings(s);
        // Before the fork, and before the builder: every process counts into the same block.
        rt.metrics = std::make_unique<Metrics>(retained_metrics_memory());
        rt.files.set_metrics(rt.metrics.get());
        rt.cache = std::make_unique<CredentialCache>(
            static_cast<std::size_t>(settings.cache_entries),
            std::chrono::microseconds(settings.cache_timeout_us), random_cache_secret());
        rt.cache->count_into(rt.metrics->cache_counters());
        make_throttle(rt, settings, pconf, ptemp, s);
        rt.authenticator = std::make_unique<Authenticator>(rt.cache.get(), rt.throttle.get());
        rt.verify_limit = std::make_unique<VerifyLimit>(retained_verify_limit_memory(),
                                                        static_cast<std::uint32_t>(settings.verify_limit),
                                                        random_cache_secret(),
                                                        VerifyLimit::default_room(request_workers()));
        rt.authenticator->limit_verifications(rt.verify_limit.get(),
                                              std::chrono::microseconds(settings.verify_wait_us));
        // No process can need more hash threads than hashes may run at once.
        rt.hash_pool = std::make_unique<HashPool>(static_cast<std::size_t>(settings.verify_limit));
        rt.authenticator->hash_on(rt.hash_pool.get());

        activate_our_files(rt, s);
        if (!load_keytabs(rt, pconf, s)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!start_user_opener(rt, pconf, s)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        prepare_index_directory(rt, pconf, s);
        rt.files.set_index_directory(&rt.index_dir, IndexRole::writer);
        rt.files.refresh_all(server_logger(s));
        if (settings.reload_interval_us > 0 && rt.index_dir.usable() && rt.files.active_count() > 0) {
            rt.builder_running = start_index_builder(rt, pconf, s);
        }
        if (rt.builder_running) {
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
 * The parent's maintenance tick (about every ten seconds). Without a
 * builder it keeps its private copy of the files current, so children
 * forked later inherit a fresh index and share its pages instead of each
 * reading the file again. With one there is nothing to keep: children map
 * the shared index.
 */
int monitor(apr_pool_t *, server_rec *s) noexcept
{
    try {
        Runtime &rt = runtime();
        if (effective_settings(s).reload_interval_us > 0 && !rt.builder_running) {
            rt.files.refresh_all(server_logger(s));
        }
    }
    catch (...) {
        // The children check the files themselves; the parent only helps.
    }
    return DECLINED;
}

/**
 * Run from pchild's cleanup, which prefork runs inside its SIGTERM handler:
 * only tell the thread to stop (one write(2)), never wait for it or free
 * anything. The process is about to exit; the thread goes with it.
 */
apr_status_t stop_watcher(void *data)
{
    static_cast<FileWatcher *>(data)->request_stop();
    return APR_SUCCESS;
}

/**
 * Each child keeps the files current, off the request path: it maps the
 * index the builder writes after a change, and until then keeps the one it
 * has, never parsing while a builder serves it (without a builder, it
 * parses the file itself).
 */
void child_init(apr_pool_t *pchild, server_rec *s) noexcept
{
    try {
        Runtime &rt = runtime();
        if (rt.remote_counters) {
            static_cast<SocacheThrottleStore *>(rt.remote_counters.get())->child_init(pchild, s);
        }
        const ServerConfig settings = effective_settings(s);
        const bool sharing = rt.builder_running || settings.reload_interval_us <= 0;
        rt.files.set_index_directory(sharing ? &rt.index_dir : nullptr, IndexRole::reader);
        // A child is the User itself: it opens files with its own rights,
        // and leaves the opener to the parent and the builder.
        rt.files.set_opener(rt.own_rights.get());
        if (rt.opener) {
            rt.opener->close_here();
        }
        if (settings.reload_interval_us <= 0 || rt.files.active_count() == 0) {
            return;
        }
        // Map the index the parent shared (or, without sharing, catch up on
        // a change since the parent's last look) before serving.
        rt.files.refresh_all(server_logger(s));
        const auto interval = std::chrono::milliseconds(std::max<std::int64_t>(1, settings.reload_interval_us / 1000));
        rt.watcher = std::make_unique<FileWatcher>(rt.files, interval, server_logger(s),
                                                   rt.builder_running ? rt.index_dir.path() : std::string());
        apr_pool_cleanup_register(pchild, rt.watcher.get(), stop_watcher, apr_pool_cleanup_null);
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

// The request-time hooks, each handed the process's runtime: the one place they find it.
int authenticate_request(request_rec *r) noexcept
{
    return check_authn(r, runtime());
}

int show_status(request_rec *r, int flags) noexcept
{
    return status_section(r, flags, runtime());
}

int serve_metrics(request_rec *r) noexcept
{
    return metrics_handler(r, runtime());
}

void register_hooks(apr_pool_t *) noexcept
{
    ap_hook_pre_config(pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_monitor(monitor, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_authn(authenticate_request, nullptr, nullptr, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(note_auth_failure, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(restore_challenge, nullptr, nullptr, APR_HOOK_MIDDLE);
    // After mod_env/mod_rewrite set Proxy-Chain-Auth and mod_dir (LAST) redirected.
    ap_hook_fixups(keep_proxy_credentials, nullptr, nullptr, APR_HOOK_REALLY_LAST);
    // Optional: a no-op unless mod_status is loaded, in whichever order.
    APR_OPTIONAL_HOOK(ap, status_hook, show_status, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_handler(serve_metrics, nullptr, nullptr, APR_HOOK_MIDDLE);
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
