/**
 * @file auth_proxy_socache.hpp
 * The throttle's counters in one of httpd's socache providers
 * (AuthProxyThrottleSOCache), so several servers behind one name count a
 * guesser's failures together.
 */
#pragma once

#include "auth_proxy/throttle/throttle.hpp"

#include <httpd.h>
#include <ap_socache.h>
#include <apr_global_mutex.h>

#include <atomic>

namespace auth_proxy {

/**
 * Counters kept in a socache, fronted by this server's shared table: a
 * record read from the socache is answered locally for a second, so that
 * requests that succeed (every one on the warm path) stay off the network;
 * a failure is counted in the socache at once, under a global mutex (local
 * providers such as shmcb need it; for redis and memcache it serialises
 * this server's own updates). If the socache cannot be reached the throttle
 * counts locally and logs it: the password check itself never depends on it.
 *
 * Every record counted here is also kept in the front table as counting
 * state until its window or lockout ends (reservations are made there
 * too), and the two are merged on every read: a socache that drops entries to make room (shmcb drops its
 * oldest, expired or not; redis and memcache may be configured to) never
 * lifts a lockout this server has seen. The socache is keyed by the whole
 * counter key, so its entries never collide.
 */
class SocacheThrottleStore final : public ThrottleStore {
public:
    /** The mutex type to register in pre_config. */
    static constexpr const char *kMutexType = "auth-proxy-throttle";

    /** Creates and initialises the provider instance named by @p spec ("provider[:args]"). Throws on failure. */
    SocacheThrottleStore(const char *spec, SharedCounterTable &front, apr_pool_t *pconf, apr_pool_t *ptemp,
                         server_rec *s);

    /** Re-opens the global mutex in a new child. */
    void child_init(apr_pool_t *pchild, server_rec *s) noexcept;

    CounterRecord read(const CounterKey &key, std::int64_t now) override;
    Counting count(const CounterKey &key, std::int64_t now, const FailureRule &rule) override;
    Reservation reserve(const CounterKey &key, std::int64_t now, std::int64_t until) override;
    void release(const CounterKey &key, std::int64_t now) override;

private:
    bool fetch(const CounterKey &key, apr_pool_t *pool, CounterRecord &out) noexcept;
    void complain(const char *what, apr_status_t status) noexcept;

    const ap_socache_provider_t *provider_ = nullptr;
    ap_socache_instance_t *instance_ = nullptr;
    apr_global_mutex_t *mutex_ = nullptr;
    const char *lock_file_ = nullptr;
    SharedCounterTable &front_;
    server_rec *server_;
    const char *name_;
    std::atomic<std::int64_t> last_complaint_{0};
};

} // namespace auth_proxy
