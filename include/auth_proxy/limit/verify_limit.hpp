/**
 * @file verify_limit.hpp
 * A server-wide cap on the hash verifications that run at once, so that a
 * flood of guesses from many addresses (each far under any throttle limit)
 * cannot take every core from requests whose credentials are cached.
 *
 * The state lives in one block of shared memory that the httpd parent maps
 * before the fork, so every process and thread draws from the same slots.
 * A request that needs a verification takes a slot, waiting for one up to a
 * bound; past it, it is shed (the caller answers 503) and no hash runs.
 *
 * Fairness: in-flight counts per key. Each request counts, while it waits
 * or holds a slot, under two keys: its user-id and its source prefix (an
 * IPv4 /24, an IPv6 /48). Its weight is the larger of the two counts, and a
 * free slot goes only to a waiter whose weight is no more than any other
 * waiter's. A flood aimed at one user, or sent from one prefix, has a
 * weight of thousands; a real login for another user from elsewhere has a
 * weight of one and takes the next free slot, however many guesses came
 * first. Chosen over per-key FIFO queues because it needs no list in shared
 * memory (a dead process cannot leave a queue broken), only counters and
 * pid-stamped entries. A flood with a fresh user and a fresh prefix per
 * guess has no key to tell it apart: there the waiters race for slots and
 * the wait bound sheds the excess. Counts are kept in keyed buckets
 * (SipHash with a random key), so nobody outside can aim collisions.
 *
 * The waiting room is bounded too (default_room(): all but a quarter of
 * the server's workers), because a waiter holds its worker: a flood larger than
 * the workers would otherwise hold them all, and cached requests would
 * queue for a worker, not a hash. When the room is full, a newcomer takes
 * the place of the heaviest waiter if that one is heavier (it is shed at
 * once), or is shed at once itself: a real login still gets in line ahead
 * of a flood, and the flood's excess costs a fast 503, not a worker.
 *
 * Robustness: every slot and waiter entry is stamped with its process id.
 * When waiters see no slot freed for a while, one of them (one per 50 ms
 * for the whole server) looks for entries whose process is gone
 * (kill(pid, 0) says ESRCH) and gives their slots back, so a killed
 * holder's slot returns once httpd has reaped it. (A pid reused before
 * that look keeps the slot until its new process ends.) Waiting sleeps on
 * a futex in the shared block, which every release wakes, so a waiter
 * holds its thread, and nothing else, for at most the wait.
 */
#pragma once

#include "auth_proxy/cache/credential_cache.hpp"
#include "auth_proxy/throttle/client_address.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

/** The limit's figures as read at one moment (each exact, the set not atomic). */
struct VerifyLimitFigures {
    std::uint32_t cap = 0;        ///< slots
    std::uint32_t in_use = 0;     ///< slots held now
    std::uint32_t peak = 0;       ///< the most slots ever held at once since the block was made
    std::uint32_t waiting = 0;    ///< requests waiting for a slot now
    std::uint64_t waits = 0;      ///< requests that had to wait (whether they got a slot or not)
    std::uint64_t wait_ns = 0;    ///< the time they waited
    std::uint64_t shed = 0;       ///< requests that got no slot within the bound
};

class VerifyLimit {
public:
    /** The most slots a block holds: a cap above it is lowered to it. */
    static constexpr std::uint32_t kMaxSlots = 256;
    /** The largest waiting room: requests that can wait at once. */
    static constexpr std::uint32_t kMaxWaiters = 4096;
    /** Changes whenever the block's layout does. */
    static constexpr std::uint32_t kLayout = 2;

    /** Size of the block. */
    static std::size_t bytes() noexcept;

    /**
     * The cap that leaves a core for everything else: max(1, cores - 1).
     * Hashing is all CPU, so more concurrent hashes than cores only make
     * each one slower, and the last core keeps cached requests, the
     * proxying and the rest of the server answering during a flood.
     */
    static std::uint32_t default_cap() noexcept;

    /**
     * The waiting room for a server of @p workers request workers (threads,
     * or processes under prefork): all but a quarter of them, at least one.
     * A waiter holds its worker, so a flood may hold no more than this
     * while the quarter kept serves everyone else.
     */
    static std::uint32_t default_room(std::uint64_t workers) noexcept;

    /**
     * Over @p memory (bytes() bytes, zero-filled when new, shared by every
     * process forked after this call). Sets the block's cap to @p cap
     * (1..kMaxSlots), its waiting room to @p room (1..kMaxWaiters) and keys
     * its buckets with @p secret.
     */
    VerifyLimit(void *memory, std::uint32_t cap, const CacheSecret &secret,
                std::uint32_t room = kMaxWaiters) noexcept;

    /** A slot, held until destroyed; or, if !held(), none: the request is shed. */
    class Slot {
    public:
        Slot() noexcept = default;
        Slot(Slot &&other) noexcept;
        Slot &operator=(Slot &&other) noexcept;
        Slot(const Slot &) = delete;
        Slot &operator=(const Slot &) = delete;
        ~Slot();

        bool held() const noexcept { return limit_ != nullptr; }
        /** How long the request waited for it (or, shed, until it gave up). */
        std::chrono::nanoseconds waited() const noexcept { return waited_; }
        /** Gives the slot back now. */
        void release() noexcept;

    private:
        friend class VerifyLimit;
        VerifyLimit *limit_ = nullptr;
        std::uint32_t index_ = 0;
        std::uint64_t entry_ = 0;
        std::chrono::nanoseconds waited_{0};
    };

    /**
     * A slot for a verification of @p user's password from @p client,
     * waiting at most @p wait for one. Never throws; a Slot that is not
     * held means shed.
     */
    Slot acquire(std::string_view user, const ClientAddress &client, std::chrono::nanoseconds wait) noexcept;

    VerifyLimitFigures figures() const noexcept;

    /** Gives back the slots and waiting places of processes that are gone; returns how many. */
    std::uint32_t reclaim_dead() noexcept;

private:
    struct Block;

    std::uint64_t entry_for(std::string_view user, const ClientAddress &client) const noexcept;
    bool try_take(std::uint64_t entry, Slot &slot) noexcept;
    /**
     * A place in the waiting room for @p entry: a free one while the room
     * has one, else the place of the heaviest waiter if it is heavier than
     * @p entry (that waiter is shed). False: shed at once.
     */
    bool enter_room(std::uint64_t entry, std::uint32_t &place) noexcept;
    bool eligible(std::uint64_t entry) const noexcept;
    std::uint32_t weight(std::uint64_t entry) const noexcept;
    void count_in(std::uint64_t entry) noexcept;
    void count_out(std::uint64_t entry) noexcept;
    void give_back(std::uint32_t index, std::uint64_t entry) noexcept;
    void wake_all() noexcept;
    /** reclaim_dead(), by one waiter of the server per interval. */
    void reclaim_now_and_then() noexcept;

    Block *block_;
};

} // namespace auth_proxy
