/**
 * @file hash_pool.hpp
 * Password hashes on threads of their own at the lowest CPU priority, so
 * that a hash takes only the CPU that cached requests and the proxying
 * leave: during a flood of guesses, a request that needs no hash never
 * waits for a core behind one.
 */
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace auth_proxy {

/**
 * Threads of this process that stay at nice 19 (a thread may always lower
 * its own priority, and never needs to raise it back) and run the hashes
 * handed to them; the request thread waits for the answer. Threads start
 * on first use, in the process that uses them (an httpd child, after the
 * fork), up to a maximum: the server-wide cap on concurrent verifications
 * bounds what one process can need. Where no thread can run a hash (none
 * could be started, or this process was forked from the one that started
 * them), it runs in the caller's thread, at the caller's priority.
 */
class HashPool {
public:
    /** What a pool thread runs: a function of one argument, returning the hash's answer. */
    using Job = bool (*)(const void *arg) noexcept;

    explicit HashPool(std::size_t max_threads) noexcept : max_(max_threads) {}
    /** Lets the threads finish the hashes they run, and joins them. */
    ~HashPool();
    HashPool(const HashPool &) = delete;
    HashPool &operator=(const HashPool &) = delete;

    /** @p job(@p arg) on a pool thread, waiting for it (or in this thread, see above). */
    bool run(Job job, const void *arg) noexcept;

    /** Threads started so far in this process. */
    std::size_t threads() const;

private:
    struct Task {
        Job job;
        const void *arg;
        bool answer = false;
        bool done = false;
    };

    void serve() noexcept;

    const std::size_t max_;
    mutable std::mutex mutex_;
    std::condition_variable work_;
    std::condition_variable finished_;
    std::deque<Task *> queue_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    pid_t owner_ = 0; ///< the process that started the threads
    bool stopping_ = false;
};

} // namespace auth_proxy
