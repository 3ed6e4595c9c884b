/**
 * @file file_watcher.hpp
 * The set of user files a process knows, and the thread that keeps them
 * current.
 */
#pragma once

#include "auth_proxy/log.hpp"
#include "auth_proxy/log_queue.hpp"
#include "auth_proxy/store/user_file.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace auth_proxy {

class IndexDirectory;

/**
 * Path -> UserFile. Entries live as long as the registry. Only active
 * entries (used by a ProxyBasic scope) are refreshed, checked and watched.
 * Thread-safe.
 */
class UserFileRegistry {
public:
    /** The entry for @p path, created dormant on first use (no I/O here). */
    UserFile &get(const std::string &path);

    /** Calls refresh() on every active entry. */
    void refresh_all(const Logger &log);

    /** How many entries are active. */
    std::size_t active_count() const;

    /** The paths of the active entries. */
    std::vector<std::string> paths() const;

    /**
     * Every entry, present and future, shares its index through @p dir in
     * @p role (see UserFile); for IndexRole::reader, only the entries active
     * now: the others, and later ones, have no writer and keep private copies.
     */
    void set_index_directory(const IndexDirectory *dir, IndexRole role);

    /** Every entry, present and future, opens its file through @p opener (see UserFile::set_opener()). */
    void set_opener(const FileOpener *opener);

    /** Every entry, present and future, reports its reloads to @p metrics (see UserFile::set_metrics()). */
    void set_metrics(Metrics *metrics);

    /** True if an index directory is set. */
    bool sharing() const;

    /** Calls release_shared_index() on every entry. */
    void release_shared_indexes();

private:
    std::vector<UserFile *> active_files() const;
    /** The role @p file gets under role_. Under mutex_. */
    IndexRole role_for(const UserFile &file) const noexcept;

    mutable std::mutex mutex_;
    const IndexDirectory *directory_ = nullptr;
    IndexRole role_ = IndexRole::private_copy;
    Metrics *metrics_ = nullptr;
    const FileOpener *opener_ = nullptr;
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
 *
 * Its messages go through a LogQueue: a log that blocks never holds up the
 * next reload.
 */
class FileWatcher {
public:
    /** Where the loop runs. */
    enum class Thread { own, caller };

    /**
     * Watches the active files of @p registry, and the directory
     * @p index_directory (if not empty), where a new index appearing is a
     * reason to refresh. Thread::own starts the loop in a thread of its
     * own; Thread::caller leaves it to the caller to call run().
     */
    FileWatcher(UserFileRegistry &registry, std::chrono::milliseconds interval, Logger log,
                std::string index_directory = std::string(), Thread thread = Thread::own);
    ~FileWatcher(); ///< stops and joins

    FileWatcher(const FileWatcher &) = delete;
    FileWatcher &operator=(const FileWatcher &) = delete;

    /** Stops the loop and waits for its thread. */
    void stop() noexcept;

    /**
     * Tells the loop to end and returns at once, without waiting for it or
     * freeing anything: async-signal-safe (one write(2)), so a pool cleanup
     * run from a signal handler (prefork's child exit) may call it.
     */
    void request_stop() noexcept;

    /** The loop: returns once stop is requested. For Thread::caller. */
    void run() noexcept;

    /** True if change notifications are in use (false: the interval alone). */
    bool notified() const noexcept { return inotify_fd_ >= 0; }

private:
    struct Watch {
        std::string directory;
        std::vector<std::string> names; ///< the files of ours in it; empty: any ".idx" file
        int descriptor = -1;            ///< -1: not (or no longer) watched
    };

    void watch_directories();
    bool drain_events() noexcept; ///< true if an event concerned one of our files
    void refresh() noexcept;

    UserFileRegistry &registry_;
    const std::chrono::milliseconds interval_;
    LogQueue log_queue_; ///< outlives the loop: declared before thread_
    const Logger log_;   ///< into log_queue_
    const std::string index_directory_;
    int inotify_fd_ = -1;
    int stop_fd_ = -1; ///< an eventfd: request_stop() writes, run() wakes up
    std::vector<Watch> watches_;
    std::thread thread_;
};

} // namespace auth_proxy
