#include "auth_proxy_socache.hpp"

#include "auth_proxy_log.hpp"

#include <ap_provider.h>
#include <http_log.h>
#include <util_mutex.h>

#include <apr_strings.h>

#include <cstring>
#include <stdexcept>
#include <string>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/** How long a record read from the socache is answered from the local table. */
constexpr std::int64_t kFreshUs = 1000 * 1000;
/** At most one complaint about an unreachable socache per process and minute. */
constexpr std::int64_t kComplaintEveryUs = 60 * 1000 * 1000LL;

constexpr char kKeyPrefix[4] = {'a', 'p', 'x', '1'};
constexpr std::size_t kKeyBytes = sizeof kKeyPrefix + 16;
constexpr std::size_t kValueBytes = 24;

void key_bytes(const CounterKey &key, unsigned char out[kKeyBytes]) noexcept
{
    std::memcpy(out, kKeyPrefix, sizeof kKeyPrefix);
    std::memcpy(out + sizeof kKeyPrefix, key.data(), key.size());
}

void put_le(unsigned char *out, std::uint64_t v, int bytes) noexcept
{
    for (int i = 0; i < bytes; ++i) {
        out[i] = static_cast<unsigned char>(v >> (8 * i));
    }
}

std::uint64_t get_le(const unsigned char *in, int bytes) noexcept
{
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
        v = (v << 8) | in[i];
    }
    return v;
}

/** A fixed little-endian layout: servers built differently read each other's records. */
void encode(const CounterRecord &r, unsigned char out[kValueBytes]) noexcept
{
    put_le(out, static_cast<std::uint64_t>(r.window_start), 8);
    put_le(out + 8, r.failures, 4);
    put_le(out + 12, 0, 4);
    put_le(out + 16, static_cast<std::uint64_t>(r.locked_until), 8);
}

CounterRecord decode(const unsigned char in[kValueBytes]) noexcept
{
    CounterRecord r;
    r.window_start = static_cast<std::int64_t>(get_le(in, 8));
    r.failures = static_cast<std::uint32_t>(get_le(in + 8, 4));
    r.locked_until = static_cast<std::int64_t>(get_le(in + 16, 8));
    return r;
}

/**
 * The record that counts more of two that should be one: the later
 * lockout, else the more failures. The socache may have dropped a record
 * (shmcb makes room by dropping its oldest entries, expired or not) that
 * this server's table still holds, or hold one another server counted.
 */
CounterRecord stronger(const CounterRecord &a, const CounterRecord &b) noexcept
{
    if (a.locked_until != b.locked_until) {
        return a.locked_until > b.locked_until ? a : b;
    }
    return a.failures >= b.failures ? a : b;
}

/** A pool of its own for one socache call: request threads share nothing. */
struct CallPool {
    apr_pool_t *pool = nullptr;
    CallPool() noexcept { apr_pool_create_unmanaged_ex(&pool, nullptr, nullptr); }
    ~CallPool()
    {
        if (pool != nullptr) {
            apr_pool_destroy(pool);
        }
    }
    CallPool(const CallPool &) = delete;
    CallPool &operator=(const CallPool &) = delete;
};

/** Holds the global mutex for one read-modify-write. */
class Locked {
public:
    explicit Locked(apr_global_mutex_t *m) noexcept : m_(m), held_(m == nullptr || apr_global_mutex_lock(m) == APR_SUCCESS) {}
    ~Locked()
    {
        if (m_ != nullptr && held_) {
            apr_global_mutex_unlock(m_);
        }
    }
    Locked(const Locked &) = delete;
    Locked &operator=(const Locked &) = delete;
    bool held() const noexcept { return held_; }

private:
    apr_global_mutex_t *m_;
    bool held_;
};

apr_status_t destroy_instance(void *data)
{
    auto *store = static_cast<std::pair<const ap_socache_provider_t *, ap_socache_instance_t *> *>(data);
    store->first->destroy(store->second, nullptr);
    return APR_SUCCESS;
}

} // namespace

SocacheThrottleStore::SocacheThrottleStore(const char *spec, SharedCounterTable &front, apr_pool_t *pconf,
                                           apr_pool_t *ptemp, server_rec *s)
    : front_(front), server_(s)
{
    const char *colon = std::strchr(spec, ':');
    name_ = colon != nullptr ? apr_pstrmemdup(pconf, spec, static_cast<apr_size_t>(colon - spec))
                             : apr_pstrdup(pconf, spec);
    const char *args = colon != nullptr ? colon + 1 : "";
    provider_ = static_cast<const ap_socache_provider_t *>(
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name_, AP_SOCACHE_PROVIDER_VERSION));
    if (provider_ == nullptr) {
        throw std::runtime_error(std::string("no socache provider '") + name_ + "'");
    }
    if (const char *err = provider_->create(&instance_, args, ptemp, pconf)) {
        throw std::runtime_error(std::string("socache ") + name_ + ": " + err);
    }
    struct ap_socache_hints hints = {};
    hints.avg_id_len = kKeyBytes;
    hints.avg_obj_size = kValueBytes;
    hints.expiry_interval = apr_time_from_sec(30);
    const apr_status_t rv = provider_->init(instance_, "mod_auth_proxy-throttle", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        char buf[120];
        throw std::runtime_error(std::string("socache ") + name_ + " failed to start: " +
                                 apr_strerror(rv, buf, sizeof buf));
    }
    auto *owned = static_cast<std::pair<const ap_socache_provider_t *, ap_socache_instance_t *> *>(
        apr_palloc(pconf, sizeof(std::pair<const ap_socache_provider_t *, ap_socache_instance_t *>)));
    owned->first = provider_;
    owned->second = instance_;
    apr_pool_cleanup_register(pconf, owned, destroy_instance, apr_pool_cleanup_null);

    const apr_status_t mrv = ap_global_mutex_create(&mutex_, &lock_file_, kMutexType, nullptr, s, pconf, 0);
    if (mrv != APR_SUCCESS) {
        char buf[120];
        throw std::runtime_error(std::string("cannot create the throttle's mutex: ") + apr_strerror(mrv, buf, sizeof buf));
    }
}

void SocacheThrottleStore::child_init(apr_pool_t *pchild, server_rec *s) noexcept
{
    if (mutex_ != nullptr &&
        apr_global_mutex_child_init(&mutex_, lock_file_ != nullptr ? lock_file_ : apr_global_mutex_lockfile(mutex_),
                                    pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, APXLOGNO(03008)
                     "cannot attach to the throttle's mutex; socache updates are not serialised in this process");
    }
}

void SocacheThrottleStore::complain(const char *what, apr_status_t status) noexcept
{
    const std::int64_t now = apr_time_now();
    std::int64_t last = last_complaint_.load(std::memory_order_relaxed);
    if (now - last < kComplaintEveryUs || !last_complaint_.compare_exchange_strong(last, now)) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, status, server_, APXLOGNO(03007)
                 "throttle socache %s: %s; counting in this server only until it answers again", name_, what);
}

bool SocacheThrottleStore::fetch(const CounterKey &key, apr_pool_t *pool, CounterRecord &out) noexcept
{
    unsigned char id[kKeyBytes];
    key_bytes(key, id);
    unsigned char value[kValueBytes];
    unsigned int length = sizeof value;
    const apr_status_t rv = provider_->retrieve(instance_, server_, id, sizeof id, value, &length, pool);
    if (rv == APR_SUCCESS && length == kValueBytes) {
        out = decode(value);
        return true;
    }
    out = CounterRecord{};
    if (rv != APR_SUCCESS && !APR_STATUS_IS_NOTFOUND(rv)) {
        complain("lookup failed", rv);
        return false;
    }
    return true;
}

CounterRecord SocacheThrottleStore::read(const CounterKey &key, std::int64_t now)
{
    CounterRecord r;
    if (front_.read_fresh(key, now, r)) {
        return r;
    }
    // What this server holds: all there is if the socache cannot answer,
    // and never forgotten because the socache did.
    const CounterRecord local = front_.read(key, now);
    const CallPool call;
    if (call.pool == nullptr) {
        return local;
    }
    {
        const Locked lock(mutex_);
        if (!fetch(key, call.pool, r)) {
            return local;
        }
    }
    r = stronger(r, local);
    front_.put(key, r, now, now + kFreshUs, r.locked_until);
    return r;
}

Reservation SocacheThrottleStore::reserve(const CounterKey &key, std::int64_t now, std::int64_t until)
{
    // The socache may drop entries; this server's table is what keeps a failure counted here.
    return front_.reserve(key, now, until);
}

void SocacheThrottleStore::release(const CounterKey &key, std::int64_t now)
{
    front_.release(key, now);
}

Counting SocacheThrottleStore::count(const CounterKey &key, std::int64_t now, const FailureRule &rule)
{
    const CallPool call;
    const Locked lock(mutex_);
    CounterRecord remote;
    if (call.pool == nullptr || !lock.held() || !fetch(key, call.pool, remote)) {
        return front_.count(key, now, rule);
    }
    Counting c;
    c.record = count_failure(stronger(remote, front_.read(key, now)), now, rule, c.locked_now);
    unsigned char id[kKeyBytes];
    key_bytes(key, id);
    unsigned char value[kValueBytes];
    encode(c.record, value);
    const apr_status_t rv = provider_->store(instance_, server_, id, sizeof id, keep_until(c.record, rule), value,
                                             sizeof value, call.pool);
    if (rv != APR_SUCCESS) {
        complain("update failed", rv);
    }
    // Kept here as counting state too, so that the socache dropping it early does not lift a lockout.
    const bool kept = front_.put(key, c.record, now, now + kFreshUs, keep_until(c.record, rule));
    c.stored = kept || rv == APR_SUCCESS;
    return c;
}

} // namespace auth_proxy
