/**
 * @file file_watcher.hpp
 * The set of user files a process knows, and the thread that keeps them
 * current.
 */
#pragma once

#include "auth_proxy/log.hpp"
#include "auth_proxy/user_file.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace auth_proxy {

/** Path -> UserFile. Entries live as long as the registry. Thread-safe. */
class UserFileRegistry {
public:
    /** The entry for @p path, created on first use (no I/O here). */
    UserFile &get(const std::string &path);

    /** Calls refresh() on every entry. */
    void refresh_all(const Logger &log);

    /** Calls check_readable() on every entry. */
    void check_readable_all(const Logger &log);

    std::size_t size() const;

    /** Every file, present and future, shares its index through @p dir (see UserFile::set_shared_dir). */
    void set_shared_dir(const std::string &dir);

private:
    mutable std::mutex mutex_;
    std::string shared_dir_;
    std::map<std::string, std::unique_ptr<UserFile>> files_;
};

/**
 * A background thread that refreshes a registry every @p interval, so a
 * changed file is seen without any request paying for the reload.
 */
class FileWatcher {
public:
    FileWatcher(UserFileRegistry &registry, std::chrono::milliseconds interval, Logger log);
    ~FileWatcher(); ///< stops and joins

    FileWatcher(const FileWatcher &) = delete;
    FileWatcher &operator=(const FileWatcher &) = delete;

    void stop() noexcept;

private:
    void run() noexcept;

    UserFileRegistry &registry_;
    const std::chrono::milliseconds interval_;
    const Logger log_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace auth_proxy
