/**
 * @file file_watcher.hpp
 * The set of user files a process knows, and the thread that keeps them
 * current.
 */
#pragma once

#include "auth_proxy/log.hpp"
#include "auth_proxy/user_file.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

    /** The paths of every entry. */
    std::vector<std::string> paths() const;

    /** Every file, present and future, shares its index through @p dir (see UserFile::set_shared_dir). */
    void set_shared_dir(const std::string &dir);

    /** True if a shared directory is set. */
    bool sharing() const;

    /** Calls release_shared_index() on every entry. */
    void release_shared_indexes();

private:
    mutable std::mutex mutex_;
    std::string shared_dir_;
    std::map<std::string, std::unique_ptr<UserFile>> files_;
};

/**
 * A background thread that keeps a registry current without any request
 * paying for a reload.
 *
 * It refreshes every @p interval, and at once when inotify reports that one
 * of the files was written and closed, renamed into place or away, deleted,
 * or had its attributes changed: it watches each file's directory (and, for
 * a symbolic link, the target's), which sees replacement by rename as well
 * as in-place edits. The interval is the fallback for what inotify cannot
 * see (network file systems, a watched directory that was itself replaced,
 * a writer that keeps the file open) and re-reads a file caught mid-write.
 */
class FileWatcher {
public:
    FileWatcher(UserFileRegistry &registry, std::chrono::milliseconds interval, Logger log);
    ~FileWatcher(); ///< stops and joins

    FileWatcher(const FileWatcher &) = delete;
    FileWatcher &operator=(const FileWatcher &) = delete;

    void stop() noexcept;

    /** True if change notifications are in use (false: the interval alone). */
    bool notified() const noexcept { return inotify_fd_ >= 0; }

private:
    struct Watch {
        std::string directory;
        std::vector<std::string> names; ///< the files of ours in it
        int descriptor = -1;            ///< -1: not (or no longer) watched
    };

    void watch_directories();
    bool drain_events() noexcept; ///< true if an event concerned one of our files
    void refresh() noexcept;
    void run() noexcept;

    UserFileRegistry &registry_;
    const std::chrono::milliseconds interval_;
    const Logger log_;
    int inotify_fd_ = -1;
    int stop_fd_ = -1; ///< an eventfd: stop() writes, run() wakes up
    std::vector<Watch> watches_;
    std::thread thread_;
};

} // namespace auth_proxy
