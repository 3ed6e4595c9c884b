/**
 * @file shared_key_set.hpp
 * A bounded set of 32-byte keys, each remembered until a TTL runs out,
 * shared by every process forked after it was made.
 *
 * The table lives in a shared mapping, so the httpd parent makes it before
 * the fork and every child (and thread) sees the same entries. It is
 * set-associative (4 slots per bucket, the least recently used one
 * replaced) and lock-free: each slot is a seqlock, readers never write (but
 * for a rare last-use stamp), and a writer that finds a slot busy just does
 * not remember that one key. A process that dies mid-write leaves one slot
 * unusable, never a wrong answer.
 */
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace auth_proxy {

using Clock = std::chrono::steady_clock;

/** A key: in practice an HMAC-SHA256 digest, so any of its bytes are uniformly distributed. */
using SetKey = std::array<std::uint8_t, 32>;

/**
 * What a table counts. Plain relaxed atomics, so they may live in shared
 * memory (zero-filled) where every process adds to the same numbers.
 */
struct KeySetCounters {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> evictions{0}; ///< a live key replaced to make room
};

class SharedKeySet {
public:
    struct Stats {
        std::uint64_t hits = 0;      ///< wherever the table counts (see count_into())
        std::uint64_t misses = 0;
        std::uint64_t evictions = 0;
        std::size_t entries = 0;     ///< the whole table
    };

    /** Bytes of shared memory a table of @p capacity keys takes. */
    static std::size_t bytes_for(std::size_t capacity) noexcept;

    /**
     * A table in a shared mapping of its own. @p capacity 0 or @p ttl 0
     * disables it. Throws if the mapping cannot be made.
     */
    SharedKeySet(std::size_t capacity, Clock::duration ttl);

    /**
     * A table in @p memory (bytes_for(@p capacity) bytes, zero-filled when
     * first used, shared, outliving this object): for a table that lives
     * longer than one configuration cycle.
     */
    SharedKeySet(void *memory, std::size_t capacity, Clock::duration ttl) noexcept;

    ~SharedKeySet();
    SharedKeySet(const SharedKeySet &) = delete;
    SharedKeySet &operator=(const SharedKeySet &) = delete;

    bool enabled() const noexcept { return slots_ != nullptr; }

    /** True if @p key was remembered and has not expired at @p now. */
    bool contains(const SetKey &key, Clock::time_point now) noexcept;

    /** Remembers @p key until now + ttl, replacing the least recently used entry of its bucket. */
    void remember(const SetKey &key, Clock::time_point now) noexcept;

    /** Remembers @p key until now + @p ttl (at most the table's TTL). */
    void remember(const SetKey &key, Clock::time_point now, Clock::duration ttl) noexcept;

    Stats stats() const noexcept;

    /**
     * Counts hits, misses and evictions into @p counters (which must outlive
     * this object) instead of this object's own, e.g. into shared memory
     * that outlives the table. Call before the table is used.
     */
    void count_into(KeySetCounters &counters) noexcept { counters_ = &counters; }

private:
    struct Slot;

    Slot *bucket_for(const SetKey &key, std::size_t &ways) const noexcept;

    std::size_t capacity_;
    Clock::duration ttl_;
    Slot *slots_ = nullptr;       ///< capacity_ slots in a shared mapping; null when disabled
    std::size_t owned_bytes_ = 0; ///< of a mapping this object made (0: the memory is someone else's)
    std::size_t buckets_ = 0;
    KeySetCounters own_counters_;
    KeySetCounters *counters_ = &own_counters_;
};

} // namespace auth_proxy
