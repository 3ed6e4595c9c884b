#include "auth_proxy/verify/hash_pool.hpp"

#include "auth_proxy/posix.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

/** The lowest priority CFS gives a normal thread. */
constexpr int kLowestNice = 19;

} // namespace

HashPool::~HashPool()
{
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        threads.swap(threads_);
    }
    work_.notify_all();
    for (std::thread &t : threads) {
        if (owner_ == ::getpid() && t.joinable()) {
            t.join();
        }
        else if (t.joinable()) {
            t.detach(); // a forked copy: the thread is not in this process
        }
    }
}

std::size_t HashPool::threads() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return owner_ == ::getpid() ? threads_.size() : 0;
}

bool HashPool::run(Job job, const void *arg) noexcept
{
    if (max_ == 0) {
        return job(arg);
    }
    Task task{job, arg};
    {
        std::unique_lock<std::mutex> lock(mutex_);
        const pid_t me = ::getpid();
        if (owner_ != 0 && owner_ != me) {
            lock.unlock();
            return job(arg);
        }
        if (idle_ == 0 && threads_.size() < max_ && !stopping_) {
            try {
                threads_.push_back(start_background_thread([this] { serve(); }));
                owner_ = me;
            }
            catch (...) {
                // No thread for it (out of threads or memory): the caller hashes.
            }
        }
        if (threads_.empty() || stopping_) {
            lock.unlock();
            return job(arg);
        }
        queue_.push_back(&task);
        work_.notify_one();
        finished_.wait(lock, [&task] { return task.done; });
    }
    return task.answer;
}

void HashPool::serve() noexcept
{
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kLowestNice);
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        ++idle_;
        work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (queue_.empty()) {
            return; // stopping, and nothing left to answer
        }
        Task *task = queue_.front();
        queue_.pop_front();
        lock.unlock();
        const bool answer = task->job(task->arg);
        lock.lock();
        task->answer = answer;
        task->done = true;
        finished_.notify_all();
    }
}

} // namespace auth_proxy
