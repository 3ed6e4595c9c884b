/**
 * @file auth_proxy_runtime.hpp
 * The process-wide state of mod_auth_proxy: the user files, the index
 * directory, the credential cache, the throttle and the reload thread. One
 * instance per configuration cycle, owned by pconf.
 */
#pragma once

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/cache/credential_cache.hpp"
#include "auth_proxy/config.hpp"
#include "auth_proxy/log.hpp"
#include "auth_proxy/metrics.hpp"
#include "auth_proxy/scheme/negotiate/gss_acceptor.hpp"
#include "auth_proxy/scheme/negotiate/service_keys.hpp"
#include "auth_proxy/store/file_opener.hpp"
#include "auth_proxy/store/file_watcher.hpp"
#include "auth_proxy/store/index_directory.hpp"
#include "auth_proxy/throttle/throttle.hpp"

#include <httpd.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace auth_proxy {

/** A section that set AuthType ProxyBasic or AuthUserFile, for configtest and to know which files are ours. */
struct ScopeRecord {
    server_rec *server;
    const char *path;       ///< section argument as httpd stores it; NULL at server level
    const char *where;      ///< "file:line"
    DirConfig *conf;
};

struct Runtime {
    apr_pool_t *pconf = nullptr;
    server_rec *server = nullptr; ///< for log lines outside requests; set in post_config
    UserFileRegistry files;
    /**
     * When httpd starts as root: the process that opens user files as the
     * User for the parent and the index builder (which inherits it).
     */
    std::unique_ptr<OpenerProcess> opener;
    std::unique_ptr<DirectOpener> own_rights; ///< opens with this process's rights: the User's, in a child
    IndexDirectory index_dir;     ///< unusable: every process keeps private indexes
    bool builder_running = false; ///< an index builder process was started this cycle
    apr_proc_t *builder = nullptr; ///< the index builder's process while there is one (kept current on restarts)
    std::unique_ptr<Metrics> metrics; ///< over memory kept across graceful restarts
    std::unique_ptr<CredentialCache> cache;
    std::unique_ptr<SharedCounterTable> counters; ///< this server's counters (the front of a socache)
    std::unique_ptr<ThrottleStore> remote_counters; ///< AuthProxyThrottleSOCache, if set
    std::unique_ptr<SharedKeySet> failures;
    std::unique_ptr<Throttle> throttle;
    std::unique_ptr<VerifyLimit> verify_limit; ///< over memory kept across graceful restarts
    std::unique_ptr<HashPool> hash_pool;       ///< the low-priority threads hashes run on (started in each child)
    std::unique_ptr<Authenticator> authenticator;
    std::unique_ptr<FileWatcher> watcher;
    std::vector<ScopeRecord> scopes;
    /**
     * The keys of every AuthProxyKeytab, by path: read by the parent (as
     * root) at start into MEMORY: keytabs, which the children inherit.
     */
    std::map<std::string, std::unique_ptr<ServiceKeys>> keytabs;
    std::string replay_cache; ///< "file2:<path>": shared by every acceptor of every server process

    /** How long the authn provider @p name takes to answer for a known user (made on first use). */
    AnswerTime &answer_time(const std::string &name);

    /**
     * This process's acceptor of the keys of @p keytab_path, mapping names
     * if @p local_name (made on first use, in the child); null and @p error
     * if the keys were not loaded or the acceptor cannot be made.
     */
    GssAcceptor *acceptor(const std::string &keytab_path, bool local_name, std::string &error);

private:
    std::mutex answer_times_mutex_;
    std::map<std::string, std::unique_ptr<AnswerTime>> answer_times_;
    std::mutex acceptors_mutex_;
    pid_t acceptors_pid_ = 0; ///< the process the acceptors were made in: none crosses a fork
    std::map<std::pair<std::string, bool>, std::unique_ptr<GssAcceptor>> acceptors_;
};

/** Creates the runtime for a new configuration cycle (pre_config). */
Runtime &create_runtime(apr_pool_t *pconf);

/** The runtime of the current cycle; exists from pre_config on. */
Runtime &runtime();

/** A Logger that writes to the error log of @p s (NULL: the main server). */
Logger server_logger(server_rec *s);

/**
 * Shared memory that outlives configuration cycles (it lives as long as the
 * httpd parent), so the throttle's counters survive graceful restarts.
 * Holds @p counters counter slots and @p failures failure-memory slots and
 * the secret that keys the failure memory; made anew (zeroed, with a new
 * secret) only when the sizes change.
 */
struct ThrottleMemory {
    void *counters;
    void *failures;
    CacheSecret secret;
};
ThrottleMemory retained_throttle_memory(std::size_t counters, std::size_t failures);

/**
 * The counters' block (Metrics::bytes()), shared and kept like the
 * throttle's memory: zeroed only at a full start, or when a module of
 * another Metrics::kLayout is loaded.
 */
void *retained_metrics_memory();

/**
 * The verification slots' block (VerifyLimit::bytes()), kept like the
 * metrics: the children of an old generation still hold and give back
 * slots of the same block as the new one's, so a graceful restart does not
 * double the cap.
 */
void *retained_verify_limit_memory();

} // namespace auth_proxy
