#include "auth_proxy_runtime.hpp"

#include "auth_proxy/posix.hpp"
#include "auth_proxy_log.hpp"

#include <http_log.h>
#include <httpd.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

Runtime *current_runtime = nullptr;

apr_status_t destroy_runtime(void *data)
{
    auto *rt = static_cast<Runtime *>(data);
    if (current_runtime == rt) {
        current_runtime = nullptr;
    }
    delete rt;
    return APR_SUCCESS;
}

void log_to_server(void *ctx, LogLevel level, LogId id, const std::string &message)
{
    int httpd_level = APLOG_DEBUG;
    switch (level) {
    case LogLevel::error:
        httpd_level = APLOG_ERR;
        break;
    case LogLevel::warning:
        httpd_level = APLOG_WARNING;
        break;
    case LogLevel::info:
        httpd_level = APLOG_INFO;
        break;
    case LogLevel::debug:
        httpd_level = APLOG_DEBUG;
        break;
    }
    ap_log_error(APLOG_MARK, httpd_level, 0, static_cast<server_rec *>(ctx), "APX%05d: %s", static_cast<int>(id),
                 message.c_str());
}

/**
 * Plain data in the process pool (ap_retained_data_*), which lives as long
 * as the httpd parent: no pointer into this module's code or static data,
 * which a restart unloads and loads again elsewhere.
 */
struct RetainedMapping {
    void *memory;
    std::size_t bytes;
};

struct RetainedThrottle {
    RetainedMapping mapping;
    std::size_t counters;
    std::size_t failures;
    CacheSecret secret;
};

struct RetainedMetrics {
    RetainedMapping mapping;
    std::uint32_t layout;
};

struct RetainedVerifyLimit {
    RetainedMapping mapping;
    std::uint32_t layout;
};

/** The retained data under @p key, zero-filled when it is first made. */
template <typename T>
T &retained(const char *key)
{
    auto *kept = static_cast<T *>(ap_retained_data_get(key));
    if (kept == nullptr) {
        kept = static_cast<T *>(ap_retained_data_create(key, sizeof(T)));
        std::memset(kept, 0, sizeof *kept);
    }
    return *kept;
}

/**
 * Replaces @p kept's memory with a fresh (zero-filled) shared mapping of
 * @p bytes. Children of the previous generation keep their own mapping of
 * the old memory until they exit.
 */
void remap(RetainedMapping &kept, std::size_t bytes, const char *what)
{
    if (kept.memory != nullptr) {
        ::munmap(kept.memory, kept.bytes);
        kept.memory = nullptr;
    }
    void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        throw std::runtime_error(errno_text(std::string("cannot map ") + what, errno));
    }
    kept.memory = p;
    kept.bytes = bytes;
}

} // namespace

Runtime &create_runtime(apr_pool_t *pconf)
{
    auto *rt = new Runtime;
    rt->pconf = pconf;
    current_runtime = rt;
    // Not run in forked children (child cleanup is null): a child never
    // frees what the parent built.
    apr_pool_cleanup_register(pconf, rt, destroy_runtime, apr_pool_cleanup_null);
    return *rt;
}

AnswerTime &Runtime::answer_time(const std::string &name)
{
    std::lock_guard<std::mutex> lock(answer_times_mutex_);
    auto &slot = answer_times_[name];
    if (!slot) {
        slot = std::make_unique<AnswerTime>();
    }
    return *slot;
}

GssAcceptor *Runtime::acceptor(const std::string &keytab_path, bool local_name, std::string &error)
{
    std::lock_guard<std::mutex> lock(acceptors_mutex_);
    if (acceptors_pid_ != ::getpid()) {
        // Made before a fork: GSS-API state is not ours to share with a child.
        for (auto &kept : acceptors_) {
            static_cast<void>(kept.second.release());
        }
        acceptors_.clear();
        acceptors_pid_ = ::getpid();
    }
    auto &slot = acceptors_[{keytab_path, local_name}];
    if (slot) {
        return slot.get();
    }
    const auto keys = keytabs.find(keytab_path);
    if (keys == keytabs.end() || !keys->second) {
        error = "the keytab " + keytab_path + " was not read at start";
        return nullptr;
    }
    AcceptorOptions options;
    options.keytab = keys->second->keytab_name();
    options.rcache = replay_cache;
    options.local_name = local_name;
    slot = GssAcceptor::create(options, error);
    return slot.get();
}

Runtime &runtime()
{
    return *current_runtime;
}

Logger server_logger(server_rec *s)
{
    return Logger{log_to_server, s};
}

ThrottleMemory retained_throttle_memory(std::size_t counters, std::size_t failures)
{
    // The name carries the table's layout (slot fields, bucket hash): a module
    // of another layout, loaded by a graceful restart, starts a table of its
    // own rather than look for records where the old one did not put them.
    RetainedThrottle &kept = retained<RetainedThrottle>("mod_auth_proxy:throttle:3");
    const std::size_t counter_bytes = (SharedCounterTable::bytes_for(counters) + 4095) & ~std::size_t{4095};
    if (kept.mapping.memory == nullptr || kept.counters != counters || kept.failures != failures) {
        remap(kept.mapping, counter_bytes + SharedKeySet::bytes_for(failures), "the throttle's counters");
        kept.counters = counters;
        kept.failures = failures;
        kept.secret = random_cache_secret();
    }
    return ThrottleMemory{kept.mapping.memory, static_cast<char *>(kept.mapping.memory) + counter_bytes, kept.secret};
}

void *retained_metrics_memory()
{
    RetainedMetrics &kept = retained<RetainedMetrics>("mod_auth_proxy:metrics");
    if (kept.mapping.memory == nullptr || kept.layout != Metrics::kLayout || kept.mapping.bytes != Metrics::bytes()) {
        remap(kept.mapping, Metrics::bytes(), "the metrics");
        kept.layout = Metrics::kLayout;
    }
    return kept.mapping.memory;
}

} // namespace auth_proxy

namespace auth_proxy {

void *retained_verify_limit_memory()
{
    RetainedVerifyLimit &kept = retained<RetainedVerifyLimit>("mod_auth_proxy:verify_limit");
    if (kept.mapping.memory == nullptr || kept.layout != VerifyLimit::kLayout ||
        kept.mapping.bytes != VerifyLimit::bytes()) {
        remap(kept.mapping, VerifyLimit::bytes(), "the verification slots");
        kept.layout = VerifyLimit::kLayout;
    }
    return kept.mapping.memory;
}

} // namespace auth_proxy
