#include "auth_proxy/log_queue.hpp"

#include "auth_proxy/posix.hpp"

#include <utility>

namespace auth_proxy {

LogQueue::LogQueue(Logger target, std::size_t capacity) : log_(target), capacity_(capacity)
{
    thread_ = start_background_thread([this] { run(); });
}

LogQueue::~LogQueue()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void LogQueue::enqueue(void *self, LogLevel level, LogId id, const std::string &message)
{
    auto *q = static_cast<LogQueue *>(self);
    {
        std::lock_guard<std::mutex> lock(q->mutex_);
        if (q->entries_.size() >= q->capacity_) {
            ++q->dropped_;
            return;
        }
        q->entries_.push_back(Entry{level, id, message});
    }
    q->wake_.notify_one();
}

void LogQueue::run() noexcept
{
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !entries_.empty(); });
        if (entries_.empty()) {
            return; // stopping, and everything is written
        }
        Entry next = std::move(entries_.front());
        entries_.pop_front();
        // Dropped messages came after everything still queued: say so once that is written.
        const std::size_t dropped = entries_.empty() ? std::exchange(dropped_, 0) : 0;
        lock.unlock();
        // The writes happen unlocked: a log that blocks holds up this thread only.
        try {
            log_(next.level, next.id, next.message);
            if (dropped > 0) {
                log_(LogLevel::warning, LogId::log_messages_dropped,
                     std::to_string(dropped) + " messages about user files were not logged: the log did not keep up");
            }
        }
        catch (...) {
            // Out of memory while formatting: the message is lost, the thread goes on.
        }
        lock.lock();
    }
}

} // namespace auth_proxy
