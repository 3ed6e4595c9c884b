#include "auth_proxy/cache/shared_key_set.hpp"

#include "auth_proxy/posix.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace auth_proxy {

/**
 * One entry, one cache line. Every field is an atomic so that a reader
 * racing a writer (in this process or another) is well defined; the
 * sequence number tells it whether what it read is whole.
 */
struct alignas(64) SharedKeySet::Slot {
    std::atomic<std::uint32_t> sequence; ///< odd while a writer is at work
    std::uint32_t unused;
    std::atomic<std::int64_t> expires;   ///< steady clock, ns; 0: empty
    std::atomic<std::int64_t> used;      ///< last remembered or hit, steady clock ns
    std::atomic<std::uint64_t> key[4];
};

namespace {

constexpr std::size_t kWays = 4;

/** How stale a slot's last-use stamp may get before a hit rewrites it (keeps hits read-only). */
constexpr std::int64_t kUseResolutionNs = 100 * 1000 * 1000;

static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free,
              "the table is shared between processes: its atomics must not hide a lock");

std::int64_t ns(Clock::time_point t) noexcept
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::array<std::uint64_t, 4> words_of(const SetKey &key) noexcept
{
    std::array<std::uint64_t, 4> w;
    std::memcpy(w.data(), key.data(), sizeof w);
    return w;
}

} // namespace

std::size_t SharedKeySet::bytes_for(std::size_t capacity) noexcept
{
    return capacity * sizeof(Slot);
}

SharedKeySet::SharedKeySet(std::size_t capacity, Clock::duration ttl) : capacity_(capacity), ttl_(ttl)
{
    if (capacity == 0 || ttl <= Clock::duration::zero()) {
        return;
    }
    owned_bytes_ = bytes_for(capacity);
    void *p = ::mmap(nullptr, owned_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        throw std::runtime_error(errno_text("cannot map a shared table", errno));
    }
    // A fresh anonymous mapping is zero-filled: every slot is empty, sequence 0.
    slots_ = static_cast<Slot *>(p);
    buckets_ = (capacity + kWays - 1) / kWays; // the last bucket may be smaller
}

SharedKeySet::SharedKeySet(void *memory, std::size_t capacity, Clock::duration ttl) noexcept
    : capacity_(capacity), ttl_(ttl)
{
    if (memory == nullptr || capacity == 0 || ttl <= Clock::duration::zero()) {
        return;
    }
    slots_ = static_cast<Slot *>(memory);
    buckets_ = (capacity + kWays - 1) / kWays;
}

SharedKeySet::~SharedKeySet()
{
    if (owned_bytes_ != 0) {
        ::munmap(slots_, owned_bytes_);
    }
}

SharedKeySet::Slot *SharedKeySet::bucket_for(const SetKey &key, std::size_t &ways) const noexcept
{
    // The key is already a uniformly distributed MAC: any 8 bytes will do.
    std::uint64_t h;
    std::memcpy(&h, key.data() + 8, sizeof h);
    const std::size_t first = static_cast<std::size_t>(h % buckets_) * kWays;
    ways = std::min(kWays, capacity_ - first);
    return slots_ + first;
}

bool SharedKeySet::contains(const SetKey &key, Clock::time_point now) noexcept
{
    if (!enabled()) {
        return false;
    }
    const auto want = words_of(key);
    const std::int64_t t = ns(now);
    std::size_t ways;
    Slot *bucket = bucket_for(key, ways);
    for (std::size_t w = 0; w < ways; ++w) {
        Slot &slot = bucket[w];
        const std::uint32_t before = slot.sequence.load(std::memory_order_acquire);
        if (before & 1) {
            continue; // being written: as good as absent
        }
        std::array<std::uint64_t, 4> have;
        for (std::size_t i = 0; i < 4; ++i) {
            have[i] = slot.key[i].load(std::memory_order_relaxed);
        }
        const std::int64_t expires = slot.expires.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (slot.sequence.load(std::memory_order_relaxed) != before || have != want || expires == 0) {
            continue;
        }
        if (expires <= t) {
            // Drop it, so the slot is the first to be reused.
            std::uint32_t seq = before;
            if (slot.sequence.compare_exchange_strong(seq, before + 1, std::memory_order_relaxed)) {
                std::atomic_thread_fence(std::memory_order_release);
                slot.expires.store(0, std::memory_order_relaxed);
                slot.sequence.store(before + 2, std::memory_order_release);
            }
            break;
        }
        if (t - slot.used.load(std::memory_order_relaxed) >= kUseResolutionNs) {
            slot.used.store(t, std::memory_order_relaxed); // only guides replacement
        }
        counters_->hits.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    counters_->misses.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void SharedKeySet::remember(const SetKey &key, Clock::time_point now) noexcept
{
    remember(key, now, ttl_);
}

void SharedKeySet::remember(const SetKey &key, Clock::time_point now, Clock::duration ttl) noexcept
{
    if (!enabled()) {
        return;
    }
    const auto want = words_of(key);
    const std::int64_t t = ns(now);
    std::size_t ways;
    Slot *bucket = bucket_for(key, ways);

    // The slot already holding this key, else a free (empty or expired) one,
    // else the least recently used.
    Slot *target = nullptr;
    Slot *free_slot = nullptr;
    Slot *oldest = nullptr;
    std::int64_t oldest_use = 0;
    for (std::size_t w = 0; w < ways && target == nullptr; ++w) {
        Slot &slot = bucket[w];
        const std::int64_t expires = slot.expires.load(std::memory_order_relaxed);
        if (expires <= t) {
            if (free_slot == nullptr) {
                free_slot = &slot;
            }
            continue;
        }
        bool same = true;
        for (std::size_t i = 0; i < 4; ++i) {
            same = same && slot.key[i].load(std::memory_order_relaxed) == want[i];
        }
        if (same) {
            target = &slot; // (a torn read only costs a second copy of the key)
            break;
        }
        const std::int64_t use = slot.used.load(std::memory_order_relaxed);
        if (oldest == nullptr || use < oldest_use) {
            oldest = &slot;
            oldest_use = use;
        }
    }
    const bool evicting = target == nullptr && free_slot == nullptr;
    if (target == nullptr) {
        target = free_slot != nullptr ? free_slot : oldest;
    }

    std::uint32_t seq = target->sequence.load(std::memory_order_relaxed);
    if ((seq & 1) || !target->sequence.compare_exchange_strong(seq, seq + 1, std::memory_order_relaxed)) {
        return; // another writer has it: this key is simply not remembered
    }
    std::atomic_thread_fence(std::memory_order_release);
    for (std::size_t i = 0; i < 4; ++i) {
        target->key[i].store(want[i], std::memory_order_relaxed);
    }
    target->expires.store(t + std::chrono::duration_cast<std::chrono::nanoseconds>(std::min(ttl, ttl_)).count(),
                          std::memory_order_relaxed);
    target->used.store(t, std::memory_order_relaxed);
    target->sequence.store(seq + 2, std::memory_order_release);
    if (evicting) {
        counters_->evictions.fetch_add(1, std::memory_order_relaxed);
    }
}

SharedKeySet::Stats SharedKeySet::stats() const noexcept
{
    Stats s;
    s.hits = counters_->hits.load(std::memory_order_relaxed);
    s.misses = counters_->misses.load(std::memory_order_relaxed);
    s.evictions = counters_->evictions.load(std::memory_order_relaxed);
    for (std::size_t i = 0; slots_ != nullptr && i < capacity_; ++i) {
        s.entries += slots_[i].expires.load(std::memory_order_relaxed) != 0 ? 1 : 0;
    }
    return s;
}

} // namespace auth_proxy
