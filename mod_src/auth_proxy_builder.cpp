#include "auth_proxy_builder.hpp"

#include "auth_proxy_config.hpp"
#include "auth_proxy_log.hpp"
#include "auth_proxy_runtime.hpp"

#include <ap_listen.h>
#include <ap_mpm.h>
#include <http_log.h>

#include <apr_thread_proc.h>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/** What the maintenance callback needs to start a new builder; lives in pconf. */
struct Builder {
    Runtime *rt;
    apr_pool_t *pconf;
    server_rec *server;
    apr_proc_t proc;
};

/** The builder's life: watch, build, write, until the parent says stop (or dies). */
[[noreturn]] void builder_main(Runtime &rt, server_rec *s, pid_t parent) noexcept
{
    // Not a server process: it serves nothing and must not keep the ports
    // open, nor share the server's reaction to graceful signals.
    ap_close_listeners();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const int sig : {SIGTERM, SIGHUP, SIGINT, SIGCHLD}) {
        signal(sig, SIG_DFL);
    }
    for (const int sig : {SIGUSR1, SIGWINCH, SIGPIPE}) {
        signal(sig, SIG_IGN); // prefork signals its whole process group on graceful restarts
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
        _exit(0); // the parent died before PDEATHSIG was set
    }
    try {
        rt.files.set_index_directory(&rt.index_dir, IndexRole::writer);
        const ServerConfig settings = effective_settings(s);
        const auto interval =
            std::chrono::milliseconds(std::max<std::int64_t>(1, settings.reload_interval_us / 1000));
        FileWatcher watcher(rt.files, interval, server_logger(s), std::string(), FileWatcher::Thread::caller);
        // A builder started after its predecessor died catches up at once:
        // the server processes wait for it rather than read files themselves.
        rt.files.refresh_all(server_logger(s));
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, APXLOGNO(03010) "index builder %ld started",
                     static_cast<long>(getpid()));
        watcher.run();
    }
    catch (const std::exception &e) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, APXLOGNO(03011) "index builder stopped: %s", e.what());
    }
    catch (...) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, APXLOGNO(03011) "index builder stopped");
    }
    _exit(1);
}

bool fork_builder(Builder &b) noexcept;

/** apr_proc_other_child callback: the parent learns of the builder's death here. */
void maintenance(int reason, void *data, apr_wait_t)
{
    auto *b = static_cast<Builder *>(data);
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST: {
        apr_proc_other_child_unregister(b);
        int state = AP_MPMQ_STOPPING;
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &state) == APR_SUCCESS && state != AP_MPMQ_STOPPING) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, b->server, APXLOGNO(03012)
                         "index builder %ld exited; starting a new one", static_cast<long>(b->proc.pid));
            fork_builder(*b);
        }
        break;
    }
    case APR_OC_REASON_RESTART:
        apr_proc_other_child_unregister(b); // the next configuration cycle starts its own
        break;
    case APR_OC_REASON_UNREGISTER:
        // pconf is being cleared (restart or stop): this builder's cycle is over.
        kill(b->proc.pid, SIGTERM);
        break;
    default:
        break;
    }
}

bool fork_builder(Builder &b) noexcept
{
    const pid_t parent = getpid();
    const apr_status_t rv = apr_proc_fork(&b.proc, b.pconf);
    if (rv == APR_INCHILD) {
        builder_main(*b.rt, b.server, parent);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, b.server, APXLOGNO(03013)
                     "cannot start the index builder; each server process reads changed user files itself");
        return false;
    }
    apr_pool_note_subprocess(b.pconf, &b.proc, APR_KILL_AFTER_TIMEOUT);
    apr_proc_other_child_register(&b.proc, maintenance, &b, nullptr, b.pconf);
    return true;
}

} // namespace

bool start_index_builder(Runtime &rt, apr_pool_t *pconf, server_rec *s) noexcept
{
    auto *b = static_cast<Builder *>(apr_pcalloc(pconf, sizeof(Builder)));
    b->rt = &rt;
    b->pconf = pconf;
    b->server = s;
    if (!fork_builder(*b)) {
        return false;
    }
    rt.builder = &b->proc;
    return true;
}

} // namespace auth_proxy
