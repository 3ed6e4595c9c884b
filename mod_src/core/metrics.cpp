#include "auth_proxy/metrics.hpp"

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/posix.hpp"

#include <atomic>

namespace auth_proxy {

namespace {

using Counter = std::atomic<std::uint64_t>;

static_assert(Counter::is_always_lock_free, "the counters are shared between processes: no hidden lock");
static_assert(static_cast<std::size_t>(Failure::ticket_refused) + 1 == kFailureKinds, "kFailureKinds is stale");

/**
 * What each user file last showed a process: the version indexed, or the
 * error. Enough for every file a configuration names; past that, changes
 * are counted in every process that sees them.
 */
constexpr std::size_t kFileSlots = 256;

/** An outcome key is never 0, which marks a free slot or nothing seen yet. */
std::uint64_t nonzero(std::uint64_t h) noexcept
{
    return h != 0 ? h : 1;
}

std::uint64_t version_key(const FileSignature &s) noexcept
{
    const std::uint64_t fields[] = {s.device, s.inode, static_cast<std::uint64_t>(s.size),
                                    static_cast<std::uint64_t>(s.mtime_ns), static_cast<std::uint64_t>(s.ctime_ns)};
    return nonzero(fnv1a(fields, sizeof fields, fnv1a("indexed")));
}

std::uint64_t error_key(std::string_view error) noexcept
{
    return nonzero(fnv1a(error, fnv1a("unusable")));
}

std::uint64_t ns_of(std::chrono::nanoseconds t) noexcept
{
    return t.count() > 0 ? static_cast<std::uint64_t>(t.count()) : 0;
}

void add(Counter &c, std::uint64_t n = 1) noexcept
{
    c.fetch_add(n, std::memory_order_relaxed);
}

std::uint64_t read(const Counter &c) noexcept
{
    return c.load(std::memory_order_relaxed);
}

} // namespace

/** The shared block. Only ever grows by a new kLayout. */
struct Metrics::Block {
    // The warm path (a cached credential) touches these two: one cache line.
    Counter admitted;
    KeySetCounters cache;
    Counter failures[kFailureKinds];
    Counter verifications[kHashFormats];
    Counter verification_ns[kHashFormats];
    Counter address_lockouts;
    Counter user_lockouts;
    Counter reloads;
    Counter reload_failures;
    Counter last_reload_ns;
    Counter last_reload_unix_ns;
    Counter throttle_full;
    struct FileSlot {
        Counter path;    ///< fnv1a of the path, nonzero; 0: free
        Counter outcome; ///< version_key() or error_key() of what the file last showed
    } files[kFileSlots];
};

bool failure_of(Reason reason, Failure &out) noexcept
{
    switch (reason) {
    case Reason::none: return false;
    case Reason::no_credentials: out = Failure::no_credentials; return true;
    case Reason::malformed: out = Failure::malformed; return true;
    case Reason::unknown_user: out = Failure::unknown_user; return true;
    case Reason::unusable_entry: out = Failure::unusable_entry; return true;
    case Reason::wrong_password: out = Failure::wrong_password; return true;
    case Reason::repeated_failure: out = Failure::repeated; return true;
    case Reason::address_locked:
    case Reason::user_locked:
    case Reason::throttle_full: out = Failure::throttled; return true;
    case Reason::store_unusable: out = Failure::file_unusable; return true;
    case Reason::store_error: out = Failure::store_error; return true;
    case Reason::no_slot: return false; // nothing was checked: the VerifyLimit counts it as shed
    case Reason::replayed:
    case Reason::ticket_expired:
    case Reason::wrong_service:
    case Reason::no_local_name: out = Failure::ticket_refused; return true;
    case Reason::acceptor_error: out = Failure::store_error; return true;
    }
    return false;
}

std::size_t Metrics::bytes() noexcept
{
    return sizeof(Block);
}

Metrics::Metrics(void *memory) noexcept : block_(static_cast<Block *>(memory))
{
}

KeySetCounters &Metrics::cache_counters() noexcept
{
    return block_->cache;
}

void Metrics::count(const Verdict &v) noexcept
{
    Block &b = *block_;
    Failure failure;
    if (v.outcome == Outcome::admitted) {
        add(b.admitted);
    }
    else if (failure_of(v.reason, failure)) {
        add(b.failures[static_cast<std::size_t>(failure)]);
    }
    // A checking store verifies too, but no hash of ours: its format stays unknown.
    const auto format = static_cast<std::size_t>(v.format);
    if ((v.verified || v.dummy) && v.format != HashFormat::unknown && format < kHashFormats) {
        add(b.verifications[format]);
        add(b.verification_ns[format], ns_of(v.hashing));
    }
    if (v.counted.address_locked_now) {
        add(b.address_lockouts);
    }
    if (v.counted.user_locked_now) {
        add(b.user_lockouts);
    }
    if (v.reason == Reason::throttle_full || v.counted.unrecorded) {
        add(b.throttle_full);
    }
}

bool Metrics::first_to_see(std::string_view path, std::uint64_t outcome) noexcept
{
    const std::uint64_t key = nonzero(fnv1a(path));
    for (std::size_t probe = 0; probe < kFileSlots; ++probe) {
        Block::FileSlot &slot = block_->files[(key + probe) % kFileSlots];
        std::uint64_t owner = slot.path.load(std::memory_order_acquire);
        if (owner == 0 && slot.path.compare_exchange_strong(owner, key, std::memory_order_acq_rel)) {
            owner = key;
        }
        if (owner != key) {
            continue;
        }
        // Whoever moves the slot to this outcome is the one to count it.
        std::uint64_t seen = slot.outcome.load(std::memory_order_relaxed);
        while (seen != outcome) {
            if (slot.outcome.compare_exchange_weak(seen, outcome, std::memory_order_relaxed)) {
                return true;
            }
        }
        return false;
    }
    return true; // no slot left: every process counts what it sees
}

bool Metrics::file_indexed(std::string_view path, const FileSignature &version, bool reload,
                           std::chrono::nanoseconds took) noexcept
{
    if (!first_to_see(path, version_key(version)) || !reload) {
        return false;
    }
    add(block_->reloads);
    block_->last_reload_ns.store(ns_of(took), std::memory_order_relaxed);
    block_->last_reload_unix_ns.store(
        ns_of(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())),
        std::memory_order_relaxed);
    return true;
}

bool Metrics::file_unusable(std::string_view path, std::string_view error, bool reload) noexcept
{
    if (!first_to_see(path, error_key(error)) || !reload) {
        return false;
    }
    add(block_->reload_failures);
    return true;
}

MetricsSnapshot Metrics::snapshot() const noexcept
{
    const Block &b = *block_;
    MetricsSnapshot s;
    s.admitted = read(b.admitted);
    for (std::size_t i = 0; i < kFailureKinds; ++i) {
        s.failures[i] = read(b.failures[i]);
    }
    s.cache_hits = read(b.cache.hits);
    s.cache_misses = read(b.cache.misses);
    s.cache_evictions = read(b.cache.evictions);
    for (std::size_t i = 0; i < kHashFormats; ++i) {
        s.verifications[i] = read(b.verifications[i]);
        s.verification_ns[i] = read(b.verification_ns[i]);
    }
    s.address_lockouts = read(b.address_lockouts);
    s.user_lockouts = read(b.user_lockouts);
    s.reloads = read(b.reloads);
    s.reload_failures = read(b.reload_failures);
    s.last_reload_ns = read(b.last_reload_ns);
    s.last_reload_unix_ns = read(b.last_reload_unix_ns);
    s.throttle_full = read(b.throttle_full);
    return s;
}

} // namespace auth_proxy
