#include "auth_proxy/limit/verify_limit.hpp"

#include "auth_proxy/cache/siphash.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <thread>

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

using Clock = std::chrono::steady_clock;
using Entry = std::atomic<std::uint64_t>;

static_assert(Entry::is_always_lock_free, "shared between processes: no hidden lock");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "shared between processes: no hidden lock");

/** Buckets of the in-flight counts: enough that unrelated keys rarely share one. */
constexpr std::uint32_t kBuckets = 4096;

/**
 * How long a waiter sleeps before it looks for slots held by dead
 * processes: a release wakes it at once, so this only bounds how long a
 * killed holder's slot stays lost.
 */
constexpr std::chrono::milliseconds kReclaimEvery{50};

// An entry packs who holds a slot or waits, and under which keys it counts:
// the process id in the high half, the user's and the prefix's buckets below.
std::uint64_t pack(std::uint32_t pid, std::uint32_t user_bucket, std::uint32_t prefix_bucket) noexcept
{
    return (std::uint64_t{pid} << 32) | (std::uint64_t{user_bucket} << 16) | prefix_bucket;
}

std::uint32_t pid_of(std::uint64_t entry) noexcept
{
    return static_cast<std::uint32_t>(entry >> 32);
}

std::uint32_t user_bucket(std::uint64_t entry) noexcept
{
    return static_cast<std::uint32_t>(entry >> 16) & 0xffff;
}

std::uint32_t prefix_bucket(std::uint64_t entry) noexcept
{
    return static_cast<std::uint32_t>(entry) & 0xffff;
}

bool process_gone(std::uint32_t pid) noexcept
{
    return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

/** Drops one from @p n, never below zero (a count a dead process left short stays sane). */
void decrement(std::atomic<std::uint32_t> &n) noexcept
{
    std::uint32_t seen = n.load(std::memory_order_relaxed);
    while (seen != 0 && !n.compare_exchange_weak(seen, seen - 1, std::memory_order_relaxed)) {
    }
}

/** Sleeps while @p word holds @p seen, up to @p nap; false if the nap ran out. */
bool futex_wait(std::atomic<std::uint32_t> &word, std::uint32_t seen, std::chrono::nanoseconds nap) noexcept
{
    timespec ts{static_cast<time_t>(nap.count() / 1000000000), static_cast<long>(nap.count() % 1000000000)};
    // Not FUTEX_PRIVATE: the word is in memory shared between processes.
    const long rc =
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
    return rc == 0 || errno != ETIMEDOUT;
}

void futex_wake_all(std::atomic<std::uint32_t> &word) noexcept
{
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::uint64_t ns_of(Clock::duration d) noexcept
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

} // namespace

/** The shared block. Only ever grows by a new kLayout. */
struct VerifyLimit::Block {
    std::atomic<std::uint32_t> cap;
    std::atomic<std::uint32_t> room;        ///< waiters at most
    std::atomic<std::uint32_t> released;    ///< futex word: moves on every release and reclaim
    std::atomic<std::uint32_t> in_use;      ///< raised after a slot is taken, lowered before it is freed
    std::atomic<std::uint32_t> peak;
    std::atomic<std::uint32_t> waiting;
    std::atomic<std::uint32_t> waiter_end;  ///< no waiter entry at or past this index was ever used
    std::atomic<std::uint64_t> last_reclaim; ///< steady-clock ns of the last look for dead processes
    std::atomic<std::uint64_t> key[2];      ///< SipHash key of the buckets
    std::atomic<std::uint64_t> waits;
    std::atomic<std::uint64_t> wait_ns;
    std::atomic<std::uint64_t> shed;
    Entry slots[kMaxSlots];                 ///< 0: free
    Entry waiters[kMaxWaiters];             ///< 0: free
    std::atomic<std::uint32_t> load[kBuckets]; ///< requests waiting or holding, per user and per prefix bucket
};

std::size_t VerifyLimit::bytes() noexcept
{
    return sizeof(Block);
}

std::uint32_t VerifyLimit::default_cap() noexcept
{
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    const long cap = cores > 1 ? cores - 1 : 1;
    return static_cast<std::uint32_t>(std::min<long>(cap, kMaxSlots));
}

std::uint32_t VerifyLimit::default_room(std::uint64_t workers) noexcept
{
    const std::uint64_t kept = std::max<std::uint64_t>(1, workers / 4);
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(workers > kept ? workers - kept : 1, 1, kMaxWaiters));
}

VerifyLimit::VerifyLimit(void *memory, std::uint32_t cap, const CacheSecret &secret, std::uint32_t room) noexcept
    : block_(static_cast<Block *>(memory))
{
    block_->cap.store(std::clamp<std::uint32_t>(cap, 1, kMaxSlots), std::memory_order_relaxed);
    block_->room.store(std::clamp<std::uint32_t>(room, 1, kMaxWaiters), std::memory_order_relaxed);
    std::uint64_t k[2] = {0, 0};
    for (std::size_t i = 0; i < 16; ++i) {
        k[i / 8] |= std::uint64_t{secret[i]} << (8 * (i % 8));
    }
    block_->key[0].store(k[0], std::memory_order_relaxed);
    block_->key[1].store(k[1], std::memory_order_relaxed);
}

std::uint64_t VerifyLimit::entry_for(std::string_view user, const ClientAddress &client) const noexcept
{
    std::uint8_t key[16];
    for (std::size_t i = 0; i < 16; ++i) {
        key[i] = static_cast<std::uint8_t>(block_->key[i / 8].load(std::memory_order_relaxed) >> (8 * (i % 8)));
    }
    const SipHash24 hash(key, sizeof key);
    // The prefix one subscriber (or one attacker) is normally given.
    std::uint8_t prefix[17] = {};
    prefix[0] = 'p';
    if (client.is_ipv4()) {
        std::copy(client.bytes.begin(), client.bytes.begin() + 15, prefix + 1);
    }
    else {
        std::copy(client.bytes.begin(), client.bytes.begin() + 6, prefix + 1);
    }
    std::uint8_t named[1 + 256] = {'u'};
    const std::size_t n = std::min<std::size_t>(user.size(), 256);
    std::copy(user.begin(), user.begin() + static_cast<std::ptrdiff_t>(n), named + 1);
    const auto ub = static_cast<std::uint32_t>(hash(named, 1 + n) % kBuckets);
    const auto pb = static_cast<std::uint32_t>(hash(prefix, sizeof prefix) % kBuckets);
    return pack(static_cast<std::uint32_t>(::getpid()), ub, pb);
}

void VerifyLimit::count_in(std::uint64_t entry) noexcept
{
    block_->load[user_bucket(entry)].fetch_add(1, std::memory_order_relaxed);
    block_->load[prefix_bucket(entry)].fetch_add(1, std::memory_order_relaxed);
}

void VerifyLimit::count_out(std::uint64_t entry) noexcept
{
    decrement(block_->load[user_bucket(entry)]);
    decrement(block_->load[prefix_bucket(entry)]);
}

std::uint32_t VerifyLimit::weight(std::uint64_t entry) const noexcept
{
    return std::max(block_->load[user_bucket(entry)].load(std::memory_order_relaxed),
                    block_->load[prefix_bucket(entry)].load(std::memory_order_relaxed));
}

bool VerifyLimit::eligible(std::uint64_t entry) const noexcept
{
    const std::uint32_t mine = weight(entry);
    const std::uint32_t end = std::min(block_->waiter_end.load(std::memory_order_acquire), kMaxWaiters);
    for (std::uint32_t i = 0; i < end; ++i) {
        const std::uint64_t other = block_->waiters[i].load(std::memory_order_relaxed);
        if (other != 0 && weight(other) < mine) {
            return false;
        }
    }
    return true;
}

bool VerifyLimit::try_take(std::uint64_t entry, Slot &slot) noexcept
{
    const std::uint32_t cap = block_->cap.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < cap; ++i) {
        std::uint64_t free = 0;
        if (block_->slots[i].load(std::memory_order_relaxed) == 0 &&
            block_->slots[i].compare_exchange_strong(free, entry, std::memory_order_acq_rel)) {
            const std::uint32_t now = block_->in_use.fetch_add(1, std::memory_order_acq_rel) + 1;
            std::uint32_t peak = block_->peak.load(std::memory_order_relaxed);
            while (now > peak && !block_->peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
            }
            slot.limit_ = this;
            slot.index_ = i;
            slot.entry_ = entry;
            return true;
        }
    }
    return false;
}

void VerifyLimit::wake_all() noexcept
{
    // Sequentially consistent with the waiter's "waiting, then released":
    // either it sees this release, or this sees it waiting.
    block_->released.fetch_add(1, std::memory_order_seq_cst);
    if (block_->waiting.load(std::memory_order_seq_cst) != 0) {
        futex_wake_all(block_->released);
    }
}

void VerifyLimit::give_back(std::uint32_t index, std::uint64_t entry) noexcept
{
    // in_use first, so that it never counts more holders than there are slots.
    block_->in_use.fetch_sub(1, std::memory_order_acq_rel);
    std::uint64_t expected = entry;
    if (!block_->slots[index].compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
        block_->in_use.fetch_add(1, std::memory_order_acq_rel); // someone else gave it back first
        return;
    }
    count_out(entry);
    wake_all();
}

VerifyLimit::Slot VerifyLimit::acquire(std::string_view user, const ClientAddress &client,
                                       std::chrono::nanoseconds wait) noexcept
{
    Slot slot;
    const std::uint64_t entry = entry_for(user, client);
    count_in(entry);
    // Nobody waiting: nobody to be fair to.
    if (block_->waiting.load(std::memory_order_acquire) == 0 && try_take(entry, slot)) {
        return slot;
    }

    const auto started = Clock::now();
    const auto deadline = started + wait;
    std::uint32_t place = kMaxWaiters;
    if (enter_room(entry, place)) {
        for (;;) {
            const std::uint32_t seen = block_->released.load(std::memory_order_seq_cst);
            if (block_->waiters[place].load(std::memory_order_acquire) != entry) {
                break; // a lighter newcomer took this place: shed
            }
            if (eligible(entry) && try_take(entry, slot)) {
                break;
            }
            const auto now = Clock::now();
            if (now >= deadline) {
                break;
            }
            const auto nap = std::min<Clock::duration>(deadline - now, kReclaimEvery);
            if (!futex_wait(block_->released, seen, std::chrono::duration_cast<std::chrono::nanoseconds>(nap))) {
                reclaim_now_and_then();
            }
        }
        std::uint64_t mine = entry;
        if (block_->waiters[place].compare_exchange_strong(mine, 0, std::memory_order_acq_rel)) {
            block_->waiting.fetch_sub(1, std::memory_order_acq_rel);
        } // else the place is the newcomer's now, and counted as its

        // Slots freed together: the next waiter in line may have looked before this one left.
        const std::uint32_t cap = block_->cap.load(std::memory_order_relaxed);
        if (slot.held() && block_->in_use.load(std::memory_order_relaxed) < cap) {
            wake_all();
        }
    }
    slot.waited_ = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started);
    block_->waits.fetch_add(1, std::memory_order_relaxed);
    block_->wait_ns.fetch_add(ns_of(slot.waited_), std::memory_order_relaxed);
    if (!slot.held()) {
        block_->shed.fetch_add(1, std::memory_order_relaxed);
        count_out(entry);
        // Its weight no longer holds the others back.
        wake_all();
    }
    return slot;
}

bool VerifyLimit::enter_room(std::uint64_t entry, std::uint32_t &place) noexcept
{
    const std::uint32_t room = block_->room.load(std::memory_order_relaxed);
    std::uint32_t waiting = block_->waiting.load(std::memory_order_seq_cst);
    while (waiting < room) {
        if (!block_->waiting.compare_exchange_weak(waiting, waiting + 1, std::memory_order_seq_cst)) {
            continue;
        }
        // Leavers free their place before they leave the count: one is free.
        for (std::uint32_t i = 0; i < kMaxWaiters; ++i) {
            std::uint64_t free = 0;
            if (block_->waiters[i].load(std::memory_order_relaxed) == 0 &&
                block_->waiters[i].compare_exchange_strong(free, entry, std::memory_order_acq_rel)) {
                place = i;
                std::uint32_t end = block_->waiter_end.load(std::memory_order_relaxed);
                while (end <= i && !block_->waiter_end.compare_exchange_weak(end, i + 1, std::memory_order_acq_rel)) {
                }
                return true;
            }
        }
        decrement(block_->waiting);
        return false;
    }
    // Full: the heaviest waiter gives way to a lighter newcomer.
    const std::uint32_t mine = weight(entry);
    const std::uint32_t end = std::min(block_->waiter_end.load(std::memory_order_acquire), kMaxWaiters);
    std::uint32_t heaviest = mine;
    std::uint32_t victim = kMaxWaiters;
    std::uint64_t victim_entry = 0;
    for (std::uint32_t i = 0; i < end; ++i) {
        const std::uint64_t other = block_->waiters[i].load(std::memory_order_relaxed);
        const std::uint32_t w = other != 0 ? weight(other) : 0;
        if (w > heaviest) {
            heaviest = w;
            victim = i;
            victim_entry = other;
        }
    }
    if (victim == kMaxWaiters ||
        !block_->waiters[victim].compare_exchange_strong(victim_entry, entry, std::memory_order_acq_rel)) {
        return false;
    }
    place = victim;
    wake_all(); // the one given way sees it and leaves
    return true;
}

void VerifyLimit::reclaim_now_and_then() noexcept
{
    // One look per interval for the whole server, not one per waiter: a
    // flood's waiters all time out together, and each look costs a kill(2)
    // per entry.
    const std::uint64_t now = ns_of(Clock::now().time_since_epoch());
    std::uint64_t last = block_->last_reclaim.load(std::memory_order_relaxed);
    if (now - last >= ns_of(kReclaimEvery) &&
        block_->last_reclaim.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
        reclaim_dead();
    }
}

std::uint32_t VerifyLimit::reclaim_dead() noexcept
{
    std::uint32_t reclaimed = 0;
    for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
        const std::uint64_t entry = block_->slots[i].load(std::memory_order_acquire);
        if (entry != 0 && process_gone(pid_of(entry))) {
            give_back(i, entry);
            ++reclaimed;
        }
    }
    const std::uint32_t end = std::min(block_->waiter_end.load(std::memory_order_acquire), kMaxWaiters);
    for (std::uint32_t i = 0; i < end; ++i) {
        std::uint64_t entry = block_->waiters[i].load(std::memory_order_acquire);
        if (entry != 0 && process_gone(pid_of(entry)) &&
            block_->waiters[i].compare_exchange_strong(entry, 0, std::memory_order_acq_rel)) {
            decrement(block_->waiting);
            count_out(entry);
            ++reclaimed;
        }
    }
    if (reclaimed != 0) {
        wake_all();
    }
    return reclaimed;
}

VerifyLimitFigures VerifyLimit::figures() const noexcept
{
    VerifyLimitFigures f;
    f.cap = block_->cap.load(std::memory_order_relaxed);
    for (const Entry &slot : block_->slots) {
        f.in_use += slot.load(std::memory_order_relaxed) != 0 ? 1 : 0;
    }
    f.peak = block_->peak.load(std::memory_order_relaxed);
    f.waiting = block_->waiting.load(std::memory_order_relaxed);
    f.waits = block_->waits.load(std::memory_order_relaxed);
    f.wait_ns = block_->wait_ns.load(std::memory_order_relaxed);
    f.shed = block_->shed.load(std::memory_order_relaxed);
    return f;
}

VerifyLimit::Slot::Slot(Slot &&other) noexcept
    : limit_(other.limit_), index_(other.index_), entry_(other.entry_), waited_(other.waited_)
{
    other.limit_ = nullptr;
}

VerifyLimit::Slot &VerifyLimit::Slot::operator=(Slot &&other) noexcept
{
    if (this != &other) {
        release();
        limit_ = other.limit_;
        index_ = other.index_;
        entry_ = other.entry_;
        waited_ = other.waited_;
        other.limit_ = nullptr;
    }
    return *this;
}

VerifyLimit::Slot::~Slot()
{
    release();
}

void VerifyLimit::Slot::release() noexcept
{
    if (limit_ != nullptr) {
        limit_->give_back(index_, entry_);
        limit_ = nullptr;
    }
}

} // namespace auth_proxy
