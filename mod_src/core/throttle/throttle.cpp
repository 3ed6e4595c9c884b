#include "auth_proxy/throttle/throttle.hpp"

#include "auth_proxy/posix.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

/**
 * Slots per bucket. Sixteen, so that a bucket fills up by chance only when
 * the table is well used: with one bucket per key, buckets of four overflow
 * (and refuse a client) at under a tenth of the table in use.
 */
constexpr std::size_t kMaxWays = 16;

/** The ways of a table of @p capacity: kMaxWays, or fewer for a table smaller than one bucket. */
std::size_t ways_for(std::size_t capacity) noexcept
{
    return capacity >= kMaxWays ? kMaxWays : (capacity == 0 ? 1 : capacity);
}
constexpr std::int64_t kMicro = 1000000;

/** How long reserve() keeps a place for a failure that a password check in progress may bring. */
constexpr std::int64_t kReservationUs = 60 * kMicro;

/** How long a writer waits for a bucket before it checks whether the holder is still alive. */
constexpr int kSpinsBeforeCheck = 2000;
/** How long it tries in all before it gives the one update up. */
constexpr int kSpinsInAll = 200000;

/** The bucket hash's key: derived from the secret, so it says nothing of the keys the secret makes elsewhere. */
Sha256Digest bucket_key(const CacheSecret &secret) noexcept
{
    return HmacSha256(secret.data(), secret.size()).mac("throttle bucket index");
}

std::int64_t micros(std::chrono::seconds s) noexcept
{
    return static_cast<std::int64_t>(s.count()) * kMicro;
}

std::array<std::uint64_t, 2> words_of(const CounterKey &key) noexcept
{
    std::array<std::uint64_t, 2> w;
    std::memcpy(w.data(), key.data(), sizeof w);
    return w;
}

} // namespace

Now Now::current() noexcept
{
    return Now{Clock::now(), std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count()};
}

CounterRecord count_failure(CounterRecord r, std::int64_t now, const FailureRule &rule, bool &locked_now) noexcept
{
    locked_now = false;
    if (r.locked_until > now) {
        return r; // locked already: nothing more to count
    }
    if (r.locked_until != 0) {
        r = CounterRecord{}; // a lockout that is over starts afresh
    }
    if (r.window_start == 0 || now - r.window_start >= rule.window_us || now < r.window_start) {
        r.window_start = now;
        r.failures = 0;
    }
    ++r.failures;
    if (rule.limit > 0 && r.failures >= rule.limit) {
        r.locked_until = now + rule.lockout_us;
        locked_now = true;
    }
    return r;
}

std::int64_t keep_until(const CounterRecord &r, const FailureRule &rule) noexcept
{
    return std::max(r.window_start + rule.window_us, r.locked_until);
}

CounterKey address_key(const ClientAddress &address) noexcept
{
    return address.throttle_subject();
}

CounterKey prefix_key(const ClientAddress &address, unsigned bits) noexcept
{
    CounterKey key{};
    const unsigned whole = bits / 8;
    std::memcpy(key.data(), address.bytes.data(), whole);
    if (bits % 8 != 0) {
        key[whole] = static_cast<std::uint8_t>(address.bytes[whole] & (0xff << (8 - bits % 8)));
    }
    key[15] = static_cast<std::uint8_t>(bits);
    return key;
}

CounterKey user_key(std::string_view user) noexcept
{
    Sha256 hash;
    hash.update("user\n");
    hash.update(user);
    const Sha256Digest d = hash.finish();
    CounterKey key;
    std::memcpy(key.data(), d.data(), key.size());
    return key;
}

// ---------------------------------------------------------------- shared table

/** One counter, one cache line. Atomics so that racing readers are well defined. */
struct alignas(64) SharedCounterTable::Slot {
    std::atomic<std::uint32_t> sequence; ///< odd while a writer is at work
    std::atomic<std::uint32_t> failures;
    std::atomic<std::uint64_t> key[2];
    std::atomic<std::int64_t> window_start;
    std::atomic<std::int64_t> locked_until;
    std::atomic<std::int64_t> keep;        ///< counting state until then: never replaced before; 0: never used
    std::atomic<std::int64_t> fresh_until; ///< put(): read_fresh() answers until then (a copy: replaceable)
    std::atomic<std::uint32_t> checks;     ///< reserve()s not yet release()d: password checks in progress
};
static_assert(sizeof(std::atomic<std::int64_t>) == 8 && std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the table is shared between processes: its atomics must not hide a lock");

/**
 * A bucket's writer lock: the word holds the holder's pid. A writer that
 * waits long finds out whether the holder still exists, and takes the lock
 * over from a dead one (a child killed mid-update must not freeze a bucket
 * for the life of the server).
 */
class SharedCounterTable::BucketLock {
public:
    explicit BucketLock(std::uint32_t *word) noexcept : word_(reinterpret_cast<std::atomic<std::uint32_t> *>(word))
    {
        const auto me = static_cast<std::uint32_t>(::getpid());
        for (int spin = 0; spin < kSpinsInAll; ++spin) {
            std::uint32_t expected = 0;
            if (word_->compare_exchange_weak(expected, me, std::memory_order_acquire)) {
                held_ = true;
                return;
            }
            if (spin % kSpinsBeforeCheck == kSpinsBeforeCheck - 1 && expected != 0 &&
                ::kill(static_cast<pid_t>(expected), 0) != 0 && errno == ESRCH &&
                word_->compare_exchange_strong(expected, me, std::memory_order_acquire)) {
                held_ = true;
                return;
            }
            if (spin > 64) {
                ::sched_yield();
            }
        }
    }
    ~BucketLock()
    {
        if (held_) {
            word_->store(0, std::memory_order_release);
        }
    }
    BucketLock(const BucketLock &) = delete;
    BucketLock &operator=(const BucketLock &) = delete;
    bool held() const noexcept { return held_; }

private:
    std::atomic<std::uint32_t> *word_;
    bool held_ = false;
};

std::size_t SharedCounterTable::bytes_for(std::size_t capacity) noexcept
{
    static_assert(sizeof(Slot) == 64, "one slot, one cache line");
    const std::size_t ways = ways_for(capacity);
    const std::size_t buckets = (capacity + ways - 1) / ways;
    const std::size_t locks = (buckets * sizeof(std::uint32_t) + 63) & ~std::size_t{63};
    return locks + buckets * ways * sizeof(Slot);
}

SharedCounterTable::SharedCounterTable(void *memory, std::size_t capacity, const CacheSecret &secret) noexcept
    : index_hash_(bucket_key(secret).data(), 16)
{
    if (memory == nullptr || capacity == 0) {
        return;
    }
    ways_ = ways_for(capacity);
    buckets_ = (capacity + ways_ - 1) / ways_;
    capacity_ = buckets_ * ways_;
    const std::size_t locks = (buckets_ * sizeof(std::uint32_t) + 63) & ~std::size_t{63};
    locks_ = static_cast<std::uint32_t *>(memory);
    slots_ = reinterpret_cast<Slot *>(static_cast<char *>(memory) + locks);
}

std::size_t SharedCounterTable::bucket_of(const CounterKey &key) const noexcept
{
    // Keyed: an unkeyed hash would let anyone pick addresses that share a bucket.
    return buckets_ == 0 ? 0 : static_cast<std::size_t>(index_hash_(key.data(), key.size()) % buckets_);
}

SharedCounterTable::Slot *SharedCounterTable::bucket(const CounterKey &key, std::size_t &index) const noexcept
{
    index = bucket_of(key);
    return slots_ + index * ways_;
}

bool SharedCounterTable::find(const CounterKey &key, std::int64_t now, CounterRecord &out,
                              std::int64_t *fresh_until) const noexcept
{
    if (slots_ == nullptr) {
        return false;
    }
    const auto want = words_of(key);
    std::size_t index;
    Slot *first = bucket(key, index);
    for (std::size_t w = 0; w < ways_; ++w) {
        Slot &slot = first[w];
        for (int attempt = 0; attempt < 4; ++attempt) {
            const std::uint32_t before = slot.sequence.load(std::memory_order_acquire);
            if (before & 1) {
                continue; // being written: read again
            }
            const std::uint64_t k0 = slot.key[0].load(std::memory_order_relaxed);
            const std::uint64_t k1 = slot.key[1].load(std::memory_order_relaxed);
            CounterRecord r;
            r.window_start = slot.window_start.load(std::memory_order_relaxed);
            r.failures = slot.failures.load(std::memory_order_relaxed);
            r.locked_until = slot.locked_until.load(std::memory_order_relaxed);
            const std::int64_t keep = slot.keep.load(std::memory_order_relaxed);
            const std::int64_t fresh = slot.fresh_until.load(std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (slot.sequence.load(std::memory_order_relaxed) != before) {
                continue;
            }
            if (k0 == want[0] && k1 == want[1] && std::max(keep, fresh) > now) {
                out = r;
                if (fresh_until != nullptr) {
                    *fresh_until = fresh;
                }
                return true;
            }
            break;
        }
    }
    return false;
}

CounterRecord SharedCounterTable::read(const CounterKey &key, std::int64_t now)
{
    CounterRecord r;
    find(key, now, r, nullptr);
    return r;
}

bool SharedCounterTable::read_fresh(const CounterKey &key, std::int64_t now, CounterRecord &out) noexcept
{
    std::int64_t fresh = 0;
    return find(key, now, out, &fresh) && fresh > now;
}

SharedCounterTable::Slot *SharedCounterTable::claim(Slot *first, const CounterKey &key, std::int64_t now) noexcept
{
    const auto want = words_of(key);
    Slot *unused = nullptr; // holds nothing at all
    Slot *copy = nullptr;   // holds only a copy of another store's record
    for (std::size_t w = 0; w < ways_; ++w) {
        Slot &slot = first[w];
        const std::int64_t keep = slot.keep.load(std::memory_order_relaxed);
        const std::int64_t fresh = slot.fresh_until.load(std::memory_order_relaxed);
        if (std::max(keep, fresh) > now && slot.key[0].load(std::memory_order_relaxed) == want[0] &&
            slot.key[1].load(std::memory_order_relaxed) == want[1]) {
            return &slot;
        }
        if (keep > now) {
            continue; // counting or locked: never made room of
        }
        if (fresh <= now) {
            unused = unused != nullptr ? unused : &slot;
        }
        else {
            copy = copy != nullptr ? copy : &slot;
        }
    }
    Slot *target = unused != nullptr ? unused : copy;
    if (target == nullptr) {
        return nullptr;
    }
    target->key[0].store(want[0], std::memory_order_relaxed);
    target->key[1].store(want[1], std::memory_order_relaxed);
    target->window_start.store(0, std::memory_order_relaxed);
    target->failures.store(0, std::memory_order_relaxed);
    target->locked_until.store(0, std::memory_order_relaxed);
    target->keep.store(0, std::memory_order_relaxed);
    target->fresh_until.store(0, std::memory_order_relaxed);
    target->checks.store(0, std::memory_order_relaxed);
    return target;
}

Counting SharedCounterTable::count(const CounterKey &key, std::int64_t now, const FailureRule &rule)
{
    Counting c;
    c.stored = false;
    if (slots_ == nullptr) {
        return c;
    }
    std::size_t index;
    Slot *first = bucket(key, index);
    const BucketLock lock(locks_ + index);
    if (!lock.held()) {
        return c; // a wedged bucket: the caller treats it as one with no room
    }
    // Claiming may move a record: readers see the whole bucket as busy meanwhile.
    for (std::size_t w = 0; w < ways_; ++w) {
        first[w].sequence.fetch_add(1, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_release);
    if (Slot *slot = claim(first, key, now)) {
        CounterRecord r;
        r.window_start = slot->window_start.load(std::memory_order_relaxed);
        r.failures = slot->failures.load(std::memory_order_relaxed);
        r.locked_until = slot->locked_until.load(std::memory_order_relaxed);
        r = count_failure(r, now, rule, c.locked_now);
        slot->window_start.store(r.window_start, std::memory_order_relaxed);
        slot->failures.store(r.failures, std::memory_order_relaxed);
        slot->locked_until.store(r.locked_until, std::memory_order_relaxed);
        slot->keep.store(std::max(keep_until(r, rule), slot->keep.load(std::memory_order_relaxed)),
                         std::memory_order_relaxed);
        c.record = r;
        c.stored = true;
    }
    for (std::size_t w = 0; w < ways_; ++w) {
        first[w].sequence.fetch_add(1, std::memory_order_release);
    }
    return c;
}

bool SharedCounterTable::put(const CounterKey &key, const CounterRecord &record, std::int64_t now,
                             std::int64_t fresh_until, std::int64_t keep) noexcept
{
    if (slots_ == nullptr) {
        return false;
    }
    std::size_t index;
    Slot *first = bucket(key, index);
    const BucketLock lock(locks_ + index);
    if (!lock.held()) {
        return false;
    }
    for (std::size_t w = 0; w < ways_; ++w) {
        first[w].sequence.fetch_add(1, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_release);
    Slot *slot = claim(first, key, now);
    if (slot != nullptr) {
        slot->window_start.store(record.window_start, std::memory_order_relaxed);
        slot->failures.store(record.failures, std::memory_order_relaxed);
        slot->locked_until.store(record.locked_until, std::memory_order_relaxed);
        slot->fresh_until.store(fresh_until, std::memory_order_relaxed);
        // What this table counted itself stays protected as long as it did.
        slot->keep.store(std::max(keep, slot->keep.load(std::memory_order_relaxed)), std::memory_order_relaxed);
    }
    for (std::size_t w = 0; w < ways_; ++w) {
        first[w].sequence.fetch_add(1, std::memory_order_release);
    }
    return slot != nullptr;
}

Reservation SharedCounterTable::reserve(const CounterKey &key, std::int64_t now, std::int64_t until)
{
    Reservation reservation;
    reservation.held = false;
    if (slots_ == nullptr) {
        return reservation;
    }
    std::size_t index;
    Slot *first = bucket(key, index);
    const BucketLock lock(locks_ + index);
    if (!lock.held()) {
        reservation.room_at = now + kMicro; // a wedged bucket: try again in a second
        return reservation;
    }
    for (std::size_t w = 0; w < ways_; ++w) {
        first[w].sequence.fetch_add(1, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_release);
    if (Slot *slot = claim(first, key, now)) {
        slot->keep.store(std::max(until, slot->keep.load(std::memory_order_relaxed)), std::memory_order_relaxed);
        slot->checks.fetch_add(1, std::memory_order_relaxed);
        reservation.held = true;
    }
    else {
        std::int64_t soonest = 0;
        for (std::size_t w = 0; w < ways_; ++w) {
            const std::int64_t keep = first[w].keep.load(std::memory_order_relaxed);
            soonest = soonest == 0 ? keep : std::min(soonest, keep);
        }
        reservation.room_at = soonest;
    }
    for (std::size_t w = 0; w < ways_; ++w) {
        first[w].sequence.fetch_add(1, std::memory_order_release);
    }
    return reservation;
}

void SharedCounterTable::release(const CounterKey &key, std::int64_t now)
{
    if (slots_ == nullptr) {
        return;
    }
    std::size_t index;
    Slot *first = bucket(key, index);
    const BucketLock lock(locks_ + index);
    if (!lock.held()) {
        return; // the reservation runs out by itself
    }
    const auto want = words_of(key);
    for (std::size_t w = 0; w < ways_; ++w) {
        Slot &slot = first[w];
        if (slot.key[0].load(std::memory_order_relaxed) != want[0] ||
            slot.key[1].load(std::memory_order_relaxed) != want[1] || slot.keep.load(std::memory_order_relaxed) <= now) {
            continue;
        }
        const std::uint32_t checks = slot.checks.load(std::memory_order_relaxed);
        slot.checks.store(checks > 0 ? checks - 1 : 0, std::memory_order_relaxed);
        // Only reservations, and no other check of this client's still counting on one: nothing to keep.
        if (checks <= 1 && slot.failures.load(std::memory_order_relaxed) == 0 &&
            slot.locked_until.load(std::memory_order_relaxed) == 0) {
            slot.sequence.fetch_add(1, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_release);
            slot.keep.store(0, std::memory_order_relaxed);
            slot.sequence.fetch_add(1, std::memory_order_release);
        }
    }
}

std::size_t SharedCounterTable::occupied(std::int64_t now) const noexcept
{
    std::size_t n = 0;
    for (std::size_t i = 0; slots_ != nullptr && i < capacity_; ++i) {
        n += std::max(slots_[i].keep.load(std::memory_order_relaxed),
                      slots_[i].fresh_until.load(std::memory_order_relaxed)) > now
                 ? 1
                 : 0;
    }
    return n;
}

// ---------------------------------------------------------------- policy

Throttle::Throttle(ThrottlePolicy policy, ThrottleStore &counters, SharedKeySet &failures, const CacheSecret &secret)
    : policy_(std::move(policy)), counters_(counters), failures_(failures), mac_(secret.data(), secret.size())
{
}

FailureRule Throttle::address_rule() const noexcept
{
    return FailureRule{policy_.address_limit, micros(policy_.window), micros(policy_.lockout)};
}

FailureRule Throttle::user_rule() const noexcept
{
    return FailureRule{policy_.user_limit, micros(policy_.window), micros(policy_.lockout)};
}

bool Throttle::applies_to(const ClientAddress &client) const noexcept
{
    return policy_.enabled && client.valid && !policy_.exempt.contains(client);
}

Throttle::Subjects Throttle::subjects_of(const ClientAddress &client) const noexcept
{
    Subjects out;
    out.list[out.size++] = Subject{address_key(client), address_rule(), 0};
    if (client.is_ipv4()) {
        return out;
    }
    const std::int64_t window = micros(policy_.window), lockout = micros(policy_.lockout);
    if (policy_.prefix56_limit > 0) {
        out.list[out.size++] = Subject{prefix_key(client, 56), FailureRule{policy_.prefix56_limit, window, lockout}, 56};
    }
    if (policy_.prefix48_limit > 0) {
        out.list[out.size++] = Subject{prefix_key(client, 48), FailureRule{policy_.prefix48_limit, window, lockout}, 48};
    }
    return out;
}

Throttle::Lock Throttle::check(const ClientAddress &client, std::string_view user, const Now &now)
{
    Lock lock;
    if (!applies_to(client)) {
        return lock;
    }
    std::int64_t until = 0;
    const Subjects subjects = subjects_of(client);
    for (std::size_t i = 0; i < subjects.size; ++i) {
        const std::int64_t subject_until = counters_.read(subjects.list[i].key, now.wall_us).locked_until;
        if (subject_until > until) {
            until = subject_until;
            lock.prefix = subjects.list[i].prefix;
        }
    }
    if (policy_.user_limit > 0 && !user.empty()) {
        const std::int64_t user_until = counters_.read(user_key(user), now.wall_us).locked_until;
        if (user_until > until) {
            until = user_until;
            lock.by_user = true;
            lock.prefix = 0;
        }
    }
    if (until <= now.wall_us) {
        return Lock{};
    }
    lock.locked = true;
    lock.retry_after = std::chrono::seconds((until - now.wall_us + kMicro - 1) / kMicro);
    return lock;
}

Throttle::Lock Throttle::reserve(const ClientAddress &client, std::string_view user, const Now &now)
{
    Lock lock;
    if (!applies_to(client)) {
        return lock;
    }
    // Long enough for any password check to end; a failure then turns the
    // reservation into a record that lasts its window.
    const std::int64_t until = now.wall_us + kReservationUs;
    std::int64_t room_at = 0;
    const auto take = [&](const CounterKey &key) {
        const Reservation r = counters_.reserve(key, now.wall_us, until);
        if (!r.held) {
            room_at = std::max(room_at, std::max(r.room_at, now.wall_us + 1));
        }
    };
    const Subjects subjects = subjects_of(client);
    for (std::size_t i = 0; i < subjects.size; ++i) {
        take(subjects.list[i].key);
    }
    if (policy_.user_limit > 0 && !user.empty()) {
        take(user_key(user));
    }
    if (room_at != 0) {
        // The places it did get run out by themselves: releasing them could
        // free a place another request of this client's is counting on.
        lock.locked = true;
        lock.table_full = true;
        lock.retry_after = std::chrono::seconds((room_at - now.wall_us + kMicro - 1) / kMicro);
    }
    return lock;
}

void Throttle::release(const ClientAddress &client, std::string_view user, const Now &now)
{
    if (!applies_to(client)) {
        return;
    }
    const Subjects subjects = subjects_of(client);
    for (std::size_t i = 0; i < subjects.size; ++i) {
        counters_.release(subjects.list[i].key, now.wall_us);
    }
    if (policy_.user_limit > 0 && !user.empty()) {
        counters_.release(user_key(user), now.wall_us);
    }
}

SetKey Throttle::failure_key(const ClientAddress &client, std::string_view user, std::string_view password,
                             std::string_view stored_hash) const noexcept
{
    const auto subject = client.throttle_subject();
    Sha256 hash = mac_.begin();
    add_field(hash, std::string_view(reinterpret_cast<const char *>(subject.data()), subject.size()));
    add_field(hash, user);
    add_field(hash, password);
    add_field(hash, stored_hash);
    return mac_.finish(hash);
}

SetKey Throttle::brief_key(const SetKey &failure) const noexcept
{
    Sha256 hash = mac_.begin();
    add_field(hash, "brief");
    add_field(hash, std::string_view(reinterpret_cast<const char *>(failure.data()), failure.size()));
    return mac_.finish(hash);
}

bool Throttle::is_repeat(const SetKey &failure, const Now &now, Recall recall) noexcept
{
    return failures_.contains(recall == Recall::brief ? brief_key(failure) : failure, now.steady);
}

Throttle::Counted Throttle::note_failure(const ClientAddress &client, std::string_view user, const SetKey &failure,
                                         const Now &now, Recall recall)
{
    Counted counted;
    if (!applies_to(client)) {
        return counted;
    }
    if (recall == Recall::brief) {
        failures_.remember(brief_key(failure), now.steady, kBriefRecall);
    }
    if (failures_.contains(failure, now.steady)) {
        return counted;
    }
    failures_.remember(failure, now.steady);
    counted.counted = true;
    const Subjects subjects = subjects_of(client);
    for (std::size_t i = 0; i < subjects.size; ++i) {
        const Subject &subject = subjects.list[i];
        const Counting c = counters_.count(subject.key, now.wall_us, subject.rule);
        counted.unrecorded = counted.unrecorded || !c.stored;
        if (subject.prefix == 0) {
            counted.failures = c.record.failures;
        }
        if (c.locked_now && !counted.address_locked_now) {
            counted.address_locked_now = true;
            counted.locked_prefix = subject.prefix;
        }
    }
    if (policy_.user_limit > 0 && !user.empty()) {
        const Counting c = counters_.count(user_key(user), now.wall_us, user_rule());
        counted.unrecorded = counted.unrecorded || !c.stored;
        counted.user_locked_now = c.locked_now;
    }
    return counted;
}

Lockout Throttle::rule_crossed(const Counted &counted) const noexcept
{
    Lockout rule;
    if (!counted.address_locked_now && !counted.user_locked_now) {
        return rule;
    }
    rule.limit = !counted.address_locked_now     ? policy_.user_limit
                 : counted.locked_prefix == 56 ? policy_.prefix56_limit
                 : counted.locked_prefix == 48 ? policy_.prefix48_limit
                                               : policy_.address_limit;
    rule.window = policy_.window;
    rule.lasts = policy_.lockout;
    return rule;
}

} // namespace auth_proxy
