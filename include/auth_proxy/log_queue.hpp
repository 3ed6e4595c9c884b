/**
 * @file log_queue.hpp
 * Logging that never makes the caller wait for the log.
 *
 * A write to the error log can block for a long time: behind other
 * processes appending to the same file, a journal commit, a full pipe to a
 * piped logger that stopped reading. The threads that take up a changed
 * user file must not wait there, or one reload's "reloaded" line delays the
 * next reload by as long as the log is stuck. They log through a LogQueue:
 * the message is queued and a thread of the queue's own writes it.
 */
#pragma once

#include "auth_proxy/log.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace auth_proxy {

class LogQueue {
public:
    /**
     * Messages go to @p target, in order, from a thread that takes no
     * signals. At most @p capacity wait at once; more are dropped and
     * counted, and the count is logged (LogId::log_messages_dropped) right
     * after the last message queued before them.
     */
    explicit LogQueue(Logger target, std::size_t capacity = 1024);

    /** Writes what is still queued, then joins the thread. */
    ~LogQueue();

    LogQueue(const LogQueue &) = delete;
    LogQueue &operator=(const LogQueue &) = delete;

    /** A Logger that queues into this queue: returns without writing anything. */
    Logger logger() noexcept { return Logger{&LogQueue::enqueue, this}; }

private:
    struct Entry {
        LogLevel level;
        LogId id;
        std::string message;
    };

    static void enqueue(void *self, LogLevel level, LogId id, const std::string &message);
    void run() noexcept;

    const Logger log_;
    const std::size_t capacity_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Entry> entries_;
    std::size_t dropped_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace auth_proxy
