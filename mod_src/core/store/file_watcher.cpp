#include "auth_proxy/store/file_watcher.hpp"

#include "auth_proxy/store/index_directory.hpp"
#include "auth_proxy/posix.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

namespace auth_proxy {

UserFile &UserFileRegistry::get(const std::string &path)
{
    std::lock_guard<std::mutex> lock(mutex_);
    auto &slot = files_[path];
    if (!slot) {
        slot = std::make_unique<UserFile>(path);
        slot->set_index_directory(directory_, role_for(*slot));
        slot->set_metrics(metrics_);
        slot->set_opener(opener_);
    }
    return *slot;
}

IndexRole UserFileRegistry::role_for(const UserFile &file) const noexcept
{
    // The writer indexes the files that were active when it started; a file
    // first used later (named only in an .htaccess) has no writer to follow.
    return role_ == IndexRole::reader && !file.active() ? IndexRole::private_copy : role_;
}

std::vector<UserFile *> UserFileRegistry::active_files() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<UserFile *> files;
    files.reserve(files_.size());
    for (const auto &entry : files_) {
        if (entry.second->active()) {
            files.push_back(entry.second.get());
        }
    }
    return files;
}

void UserFileRegistry::refresh_all(const Logger &log)
{
    // Entries are never removed, so the pointers stay valid unlocked.
    for (UserFile *file : active_files()) {
        file->refresh(log);
    }
}

void UserFileRegistry::set_opener(const FileOpener *opener)
{
    std::lock_guard<std::mutex> lock(mutex_);
    opener_ = opener;
    for (auto &entry : files_) {
        entry.second->set_opener(opener);
    }
}

void UserFileRegistry::set_index_directory(const IndexDirectory *dir, IndexRole role)
{
    std::lock_guard<std::mutex> lock(mutex_);
    directory_ = dir;
    role_ = role;
    for (auto &entry : files_) {
        entry.second->set_index_directory(dir, role_for(*entry.second));
    }
}

void UserFileRegistry::set_metrics(Metrics *metrics)
{
    std::lock_guard<std::mutex> lock(mutex_);
    metrics_ = metrics;
    for (auto &entry : files_) {
        entry.second->set_metrics(metrics);
    }
}

bool UserFileRegistry::sharing() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return directory_ != nullptr && directory_->usable();
}

void UserFileRegistry::release_shared_indexes()
{
    for (UserFile *file : active_files()) {
        file->release_shared_index();
    }
}

std::vector<std::string> UserFileRegistry::paths() const
{
    std::vector<std::string> out;
    for (const UserFile *file : active_files()) {
        out.push_back(file->path());
    }
    return out;
}

std::size_t UserFileRegistry::active_count() const
{
    return active_files().size();
}

namespace {

/** What makes a watched directory worth a look: a file of ours written, replaced, removed or re-permissioned. */
constexpr std::uint32_t kFileEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;
/** The directory itself went away or moved: its watch no longer stands for its path. */
constexpr std::uint32_t kDirectoryGone = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT;

std::string directory_of(const std::string &path)
{
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

bool is_index_name(std::string_view name)
{
    constexpr std::string_view kSuffix = ".idx";
    return name.size() > kSuffix.size() && name.substr(name.size() - kSuffix.size()) == kSuffix;
}

std::string name_of(const std::string &path)
{
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

} // namespace

FileWatcher::FileWatcher(UserFileRegistry &registry, std::chrono::milliseconds interval, Logger log,
                         std::string index_directory, Thread thread)
    : registry_(registry), interval_(interval), log_queue_(log), log_(log_queue_.logger()),
      index_directory_(std::move(index_directory))
{
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "eventfd for the user file watcher");
    }
    inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (inotify_fd_ < 0) {
        log_(LogLevel::warning, LogId::inotify_unavailable, errno_text("inotify is not available", errno) + "; user files are checked every " +
                                    std::to_string(interval_.count()) + " ms only");
    }
    try {
        watch_directories();
        if (thread == Thread::own) {
            thread_ = start_background_thread([this] { run(); });
        }
    }
    catch (...) {
        ::close(stop_fd_);
        if (inotify_fd_ >= 0) {
            ::close(inotify_fd_);
        }
        throw;
    }
}

FileWatcher::~FileWatcher()
{
    stop();
    ::close(stop_fd_);
    if (inotify_fd_ >= 0) {
        ::close(inotify_fd_); // removes every watch
    }
}

void FileWatcher::request_stop() noexcept
{
    const std::uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof one) < 0) {
        // Only EAGAIN (the counter is full: a stop is pending anyway) is possible.
    }
}

void FileWatcher::stop() noexcept
{
    request_stop();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void FileWatcher::watch_directories()
{
    if (inotify_fd_ < 0) {
        return;
    }
    // Each file's directory, and for a symbolic link also the directory of
    // what it points to, where an edit of the target shows up.
    std::map<std::string, std::vector<std::string>> wanted;
    for (const std::string &path : registry_.paths()) {
        wanted[directory_of(path)].push_back(name_of(path));
        char resolved[PATH_MAX];
        if (::realpath(path.c_str(), resolved) != nullptr && path != resolved) {
            wanted[directory_of(resolved)].push_back(name_of(resolved));
        }
    }
    if (!index_directory_.empty()) {
        wanted[index_directory_]; // no names: any index file appearing counts
    }
    for (auto &[directory, names] : wanted) {
        auto it = std::find_if(watches_.begin(), watches_.end(),
                               [&dir = directory](const Watch &w) { return w.directory == dir; });
        if (it == watches_.end()) {
            it = watches_.insert(watches_.end(), Watch{directory, {}, -1});
        }
        it->names = std::move(names);
        if (it->descriptor < 0) {
            // Fails for a directory that does not exist (yet): tried again on the next tick.
            it->descriptor = ::inotify_add_watch(inotify_fd_, directory.c_str(), kFileEvents | kDirectoryGone | IN_ONLYDIR);
        }
    }
}

bool FileWatcher::drain_events() noexcept
{
    bool relevant = false;
    alignas(struct inotify_event) char buffer[16384];
    for (;;) {
        const ssize_t n = ::read(inotify_fd_, buffer, sizeof buffer);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return relevant; // EAGAIN: drained
        }
        for (ssize_t at = 0; at < n;) {
            const auto *event = reinterpret_cast<const struct inotify_event *>(buffer + at);
            at += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
            if (event->mask & IN_Q_OVERFLOW) {
                relevant = true; // events were lost: look at everything
                continue;
            }
            for (Watch &watch : watches_) {
                if (watch.descriptor != event->wd) {
                    continue;
                }
                if (event->mask & kDirectoryGone) {
                    if (!(event->mask & IN_IGNORED)) {
                        ::inotify_rm_watch(inotify_fd_, watch.descriptor);
                    }
                    watch.descriptor = -1; // watched again by path on the next tick
                    relevant = true;
                }
                else if (event->len > 0 &&
                         (watch.directory == index_directory_
                              ? is_index_name(event->name)
                              : std::find(watch.names.begin(), watch.names.end(), event->name) != watch.names.end())) {
                    relevant = true;
                }
            }
        }
    }
}

void FileWatcher::refresh() noexcept
{
    try {
        registry_.refresh_all(log_);
    }
    catch (const std::exception &e) {
        log_(LogLevel::error, LogId::reload_failed, std::string("reloading password files failed: ") + e.what());
    }
    catch (...) {
        log_(LogLevel::error, LogId::reload_failed, "reloading password files failed");
    }
}

void FileWatcher::run() noexcept
{
    using std::chrono::steady_clock;
    struct pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}}; // poll() skips fd -1
    auto next_tick = steady_clock::now() + interval_;
    for (;;) {
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - steady_clock::now());
        const int timeout = static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(wait.count() + 1, 0, 60000));
        const int ready = ::poll(fds, 2, timeout);
        if (ready < 0 && errno != EINTR) {
            log_(LogLevel::error, LogId::watcher_poll_failed, errno_text("user file watcher: poll failed", errno));
            return;
        }
        if (ready > 0 && (fds[0].revents & POLLIN)) {
            return; // stop()
        }
        bool due = ready > 0 && (fds[1].revents & POLLIN) && drain_events();
        if (steady_clock::now() >= next_tick) {
            due = true;
            next_tick = steady_clock::now() + interval_;
            try {
                watch_directories(); // directories that appeared or were replaced
            }
            catch (...) {
                // Out of memory: the interval still covers every file.
            }
        }
        if (due) {
            refresh();
        }
    }
}

} // namespace auth_proxy
