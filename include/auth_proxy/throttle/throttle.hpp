/**
 * @file throttle.hpp
 * The guessing throttle: counts distinct failed credentials per client
 * address (and, if asked, per user) and locks a guesser out for a while.
 *
 * It is aimed at guessing, not at people: a failure counts once per
 * distinct (address, user, password, stored hash), so a browser that
 * resends one stale saved password with every request of a page makes one
 * guess, not fifty. While an address is locked out its requests are refused
 * before any password is looked at, so the right password from there
 * learns nothing.
 *
 * IPv6 failures count against the client's /64 (its address limit) and
 * also against its /56 and /48, each with a limit of its own, so a holder
 * of a whole prefix gets no more guesses than the prefix's limit.
 *
 * Nothing outside can make records meet: the shared table picks a bucket
 * with a keyed hash. And nothing can push a record out: a record still
 * counting or locked is never evicted. Before a password is checked, its
 * client's records are reserved (made, if new); a client for which there is
 * no room is refused with 429 without the check (fails closed), so no
 * failure goes uncounted and no lockout is forgotten to make room.
 */
#pragma once

#include "auth_proxy/throttle/client_address.hpp"
#include "auth_proxy/cache/credential_cache.hpp"
#include "auth_proxy/cache/shared_key_set.hpp"
#include "auth_proxy/cache/siphash.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

/** The operator's settings. */
struct ThrottlePolicy {
    bool enabled = true;
    std::uint32_t address_limit = 20; ///< distinct failures per address per window before a lockout
    std::chrono::seconds window{600};
    std::chrono::seconds lockout{600};
    std::uint32_t user_limit = 0;     ///< distinct failures per user per window; 0: no per-user lockout
    std::uint32_t prefix56_limit = 60;  ///< IPv6: distinct failures per /56 per window; 0: not counted
    std::uint32_t prefix48_limit = 200; ///< IPv6: distinct failures per /48 per window; 0: not counted
    AddressList exempt;               ///< never counted, never locked out
};

/** A throttle rule a failure crossed, for the operator's log line. */
struct Lockout {
    std::uint32_t limit = 0;        ///< distinct failures that lock out
    std::chrono::seconds window{0}; ///< within which they count
    std::chrono::seconds lasts{0};  ///< how long the lockout lasts
};

/** Both clocks a decision needs: steady for the in-memory sets, wall time for counters other hosts read. */
struct Now {
    Clock::time_point steady;
    std::int64_t wall_us; ///< microseconds since the epoch

    static Now current() noexcept;
};

/** One counter (an address or a user). Times in microseconds since the epoch; 0: none. */
struct CounterRecord {
    std::int64_t window_start = 0; ///< the first failure of the current window
    std::uint32_t failures = 0;    ///< distinct failures since window_start
    std::int64_t locked_until = 0; ///< end of a lockout
};

/** The counting rule, in the units a store keeps. */
struct FailureRule {
    std::uint32_t limit;
    std::int64_t window_us;
    std::int64_t lockout_us;
};

/**
 * The rule itself, a pure function: @p record after one more distinct
 * failure at @p now. A window starts at its first failure and ends
 * window_us later; the limit-th failure within it starts a lockout
 * (@p locked_now); a record whose lockout is over starts afresh.
 */
CounterRecord count_failure(CounterRecord record, std::int64_t now, const FailureRule &rule, bool &locked_now) noexcept;

/** Until when a store must keep @p record for the rule to work. */
std::int64_t keep_until(const CounterRecord &record, const FailureRule &rule) noexcept;

/** A counter's key: an address (its throttle subject) or a user (a digest of the name). */
using CounterKey = std::array<std::uint8_t, 16>;

CounterKey address_key(const ClientAddress &address) noexcept;
CounterKey user_key(std::string_view user) noexcept;

/**
 * The key of an IPv6 address's /@p bits prefix (56 or 48): the address cut
 * to @p bits, the length in its last byte, so no prefix key is an address
 * key (whose last 8 bytes, an IPv6 /64's, are 0).
 */
CounterKey prefix_key(const ClientAddress &address, unsigned bits) noexcept;

/** Whether a key has its place in a store. */
struct Reservation {
    bool held = true;         ///< false: no record, and no room for one without forgetting another
    std::int64_t room_at = 0; ///< !held: when the first record in the way expires
};

/** What counting one failure did. */
struct Counting {
    CounterRecord record;    ///< the record after the failure
    bool locked_now = false; ///< this failure started a lockout
    bool stored = true;      ///< false: no room; the failure is not counted anywhere
};

/** Where counters live: this server's shared memory, or an httpd socache shared with other servers. */
class ThrottleStore {
public:
    virtual ~ThrottleStore() = default;

    /** The record under @p key as of @p now (an empty record if none). */
    virtual CounterRecord read(const CounterKey &key, std::int64_t now) = 0;

    /** Applies count_failure() to the record under @p key as one step. Never evicts a record to make room. */
    virtual Counting count(const CounterKey &key, std::int64_t now, const FailureRule &rule) = 0;

    /**
     * Makes sure a failure under @p key can be counted until @p until: its
     * record, or an empty one kept that long. Never evicts a record.
     */
    virtual Reservation reserve(const CounterKey &key, std::int64_t now, std::int64_t until) = 0;

    /** Gives up a reservation of @p key that nothing was counted under (the password was right). */
    virtual void release(const CounterKey &key, std::int64_t now) = 0;

    /** count(), the new record and whether it locked. */
    CounterRecord add_failure(const CounterKey &key, std::int64_t now, const FailureRule &rule, bool &locked_now)
    {
        const Counting c = count(key, now, rule);
        locked_now = c.locked_now;
        return c.record;
    }
};

/**
 * Counters in a shared mapping made before the fork (or kept across
 * graceful restarts by the caller): buckets of 16 slots, readers lock-free
 * (a seqlock per slot), writers one at a time per bucket. A bucket lock
 * held by a process that died is taken over.
 *
 * The bucket of a key is a SipHash of it under a secret the parent draws at
 * start, so nobody outside can tell which addresses share a bucket. A
 * record whose window, lockout or reservation has not ended is never
 * replaced: a new key that finds its bucket full of such records is not
 * stored (reserve() says so beforehand, count() after), and the caller
 * fails closed.
 */
class SharedCounterTable final : public ThrottleStore {
public:
    /** Bytes of shared memory a table of @p capacity counters takes. */
    static std::size_t bytes_for(std::size_t capacity) noexcept;

    /**
     * A table in @p memory (bytes_for(@p capacity), zero-filled when first
     * used, shared, outliving this), its buckets keyed by @p secret (the
     * same for every process that shares the memory).
     */
    SharedCounterTable(void *memory, std::size_t capacity, const CacheSecret &secret) noexcept;

    CounterRecord read(const CounterKey &key, std::int64_t now) override;
    Counting count(const CounterKey &key, std::int64_t now, const FailureRule &rule) override;
    Reservation reserve(const CounterKey &key, std::int64_t now, std::int64_t until) override;
    void release(const CounterKey &key, std::int64_t now) override;

    /**
     * Stores @p record as read from another store at @p now, so
     * read_fresh() answers from here until @p fresh_until: how a remote store
     * keeps requests that succeed off the network. The record is counting
     * state (never evicted) until @p keep; after that, until @p fresh_until,
     * a mere copy that a new record may replace. Returns false if there was
     * no room.
     */
    bool put(const CounterKey &key, const CounterRecord &record, std::int64_t now, std::int64_t fresh_until,
             std::int64_t keep) noexcept;

    /** The record under @p key if it was put() and is still fresh at @p now. */
    bool read_fresh(const CounterKey &key, std::int64_t now, CounterRecord &out) noexcept;

    /** Records currently kept (for status pages and tests). */
    std::size_t occupied(std::int64_t now) const noexcept;

    /** The bucket @p key falls in (for tests: which keys share one). */
    std::size_t bucket_of(const CounterKey &key) const noexcept;

private:
    struct Slot;
    class BucketLock;

    /** The first slot of @p key's bucket; @p index: the bucket's number (for its lock). */
    Slot *bucket(const CounterKey &key, std::size_t &index) const noexcept;
    /** The slot of @p key in its bucket, else a slot holding nothing that counts; null if none. Bucket locked. */
    Slot *claim(Slot *first, const CounterKey &key, std::int64_t now) noexcept;
    bool find(const CounterKey &key, std::int64_t now, CounterRecord &out, std::int64_t *fresh_until) const noexcept;

    std::uint32_t *locks_ = nullptr;
    Slot *slots_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t buckets_ = 0;
    std::size_t ways_ = 1;     ///< slots per bucket
    SipHash24 index_hash_;
};

/**
 * How long a failure is refused, unasked, as a repeat. A user file's failure
 * is keyed by the stored hash, so it stands until the hash changes: the
 * whole window. A checking store (LDAP, SQL, DBM) can change its answer at
 * any moment, when a password is set there, so its failures are taken as
 * repeats only for kBriefRecall: long enough for the requests of one page
 * that a browser sends with a stale password, short enough that a password
 * just set in the directory works from the address that tried it a moment
 * before. Either way a failure counts towards a lockout once per window.
 */
enum class Recall { window, brief };
constexpr std::chrono::seconds kBriefRecall{3};

/** The throttle: the policy applied over a counter store and a memory of recent failures. */
class Throttle {
public:
    /**
     * @p failures remembers recent failed credentials (its TTL should be
     * the window); @p secret keys them, so the memory holds no password.
     * It may forget an entry to make room: that only makes a repeat of that
     * failure count again, never a failure count less.
     */
    Throttle(ThrottlePolicy policy, ThrottleStore &counters, SharedKeySet &failures, const CacheSecret &secret);

    const ThrottlePolicy &policy() const noexcept { return policy_; }

    /** Whether @p client is throttled at all (enabled and not exempt). */
    bool applies_to(const ClientAddress &client) const noexcept;

    struct Lock {
        bool locked = false;
        bool by_user = false;                ///< the user, not the address, is locked out
        unsigned prefix = 0;                 ///< IPv6: 56 or 48 if that prefix is what is locked out
        bool table_full = false;             ///< reserve(): no room to count a failure, so refused
        std::chrono::seconds retry_after{0}; ///< rounded up
    };

    /** Whether @p client (or @p user, with per-user lockout on) is locked out at @p now. */
    Lock check(const ClientAddress &client, std::string_view user, const Now &now);

    /**
     * Called before a password is checked: reserves the records a failure
     * would be counted under. If one finds no room, the result is locked
     * (table_full), and the password must not be checked: a failure that
     * cannot be counted would be a free guess.
     */
    Lock reserve(const ClientAddress &client, std::string_view user, const Now &now);

    /** After a password checked right: gives up what reserve() kept and nothing was counted under. */
    void release(const ClientAddress &client, std::string_view user, const Now &now);

    /** Names one failed credential from one client; keyed, so it holds no password. */
    SetKey failure_key(const ClientAddress &client, std::string_view user, std::string_view password,
                       std::string_view stored_hash) const noexcept;

    /** True if @p failure was seen failing within the time @p recall names: an identical repeat. */
    bool is_repeat(const SetKey &failure, const Now &now, Recall recall = Recall::window) noexcept;

    struct Counted {
        bool counted = false;           ///< a new distinct failure
        bool address_locked_now = false; ///< this failure started the address's lockout
        bool user_locked_now = false;
        unsigned locked_prefix = 0;     ///< IPv6: 56 or 48 if this failure locked that prefix (address_locked_now set)
        bool unrecorded = false;        ///< a counter had no room (a lost race with check()): not counted there
        std::uint32_t failures = 0;     ///< the address's distinct failures in its window
    };

    /**
     * Records a failure of @p failure (see failure_key()) from @p client for
     * @p user: counted once per window, a repeat for as long as @p recall says.
     */
    Counted note_failure(const ClientAddress &client, std::string_view user, const SetKey &failure, const Now &now,
                         Recall recall = Recall::window);

    /** The rule @p counted crossed (address_locked_now or user_locked_now set); zeros if none. */
    Lockout rule_crossed(const Counted &counted) const noexcept;

    /** A counter a failure from one client is counted under. */
    struct Subject {
        CounterKey key;
        FailureRule rule;
        unsigned prefix; ///< 0: the address itself (an IPv6 client's /64); 56, 48: that prefix
    };
    struct Subjects {
        std::array<Subject, 3> list;
        std::size_t size = 0;
    };

    /** The counters a failure from @p client counts against: its address and, for IPv6, its /56 and /48. */
    Subjects subjects_of(const ClientAddress &client) const noexcept;

private:
    FailureRule address_rule() const noexcept;
    /** What a failure is remembered under for a brief recall: apart from its (window-long) counting key. */
    SetKey brief_key(const SetKey &failure) const noexcept;
    FailureRule user_rule() const noexcept;

    ThrottlePolicy policy_;
    ThrottleStore &counters_;
    SharedKeySet &failures_;
    HmacSha256 mac_;
};

} // namespace auth_proxy
