#include "auth_proxy/file_watcher.hpp"

#include <vector>

namespace auth_proxy {

UserFile &UserFileRegistry::get(const std::string &path)
{
    std::lock_guard<std::mutex> lock(mutex_);
    auto &slot = files_[path];
    if (!slot) {
        slot = std::make_unique<UserFile>(path);
        slot->set_shared_dir(shared_dir_);
    }
    return *slot;
}

void UserFileRegistry::refresh_all(const Logger &log)
{
    std::vector<UserFile *> files;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        files.reserve(files_.size());
        for (auto &entry : files_) {
            files.push_back(entry.second.get());
        }
    }
    // Entries are never removed, so the pointers stay valid unlocked.
    for (UserFile *file : files) {
        file->refresh(log);
    }
}

void UserFileRegistry::check_readable_all(const Logger &log)
{
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &entry : files_) {
        entry.second->check_readable(log);
    }
}

void UserFileRegistry::set_shared_dir(const std::string &dir)
{
    std::lock_guard<std::mutex> lock(mutex_);
    shared_dir_ = dir;
    for (auto &entry : files_) {
        entry.second->set_shared_dir(dir);
    }
}

std::size_t UserFileRegistry::size() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return files_.size();
}

FileWatcher::FileWatcher(UserFileRegistry &registry, std::chrono::milliseconds interval, Logger log)
    : registry_(registry), interval_(interval), log_(log)
{
    thread_ = std::thread([this] { run(); });
}

FileWatcher::~FileWatcher() { stop(); }

void FileWatcher::stop() noexcept
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void FileWatcher::run() noexcept
{
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
        lock.unlock();
        try {
            registry_.refresh_all(log_);
        }
        catch (const std::exception &e) {
            log_(LogLevel::error, std::string("reloading password files failed: ") + e.what());
        }
        catch (...) {
            log_(LogLevel::error, "reloading password files failed");
        }
        lock.lock();
    }
}

} // namespace auth_proxy
