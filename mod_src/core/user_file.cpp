#include "auth_proxy/user_file.hpp"

#include "auth_proxy/shared_index.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

constexpr std::size_t kMaxLoggedDiagnostics = 20;

/** Re-reads of a file that changed while it was read, or was just emptied. */
constexpr int kSettleAttempts = 2;
constexpr std::chrono::milliseconds kSettlePause{20};

FileSignature signature_of(const struct stat &st) noexcept
{
    FileSignature sig;
    sig.device = static_cast<std::uint64_t>(st.st_dev);
    sig.inode = static_cast<std::uint64_t>(st.st_ino);
    sig.size = static_cast<std::int64_t>(st.st_size);
    sig.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    sig.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    return sig;
}

std::string errno_text(int err)
{
    char buf[256];
    // GNU strerror_r returns the message (maybe not in buf).
    return std::string(strerror_r(err, buf, sizeof buf));
}

/** Closes a descriptor on every path out of read_file(). */
struct Fd {
    int fd;
    ~Fd()
    {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

/** Reads the whole file; returns 0 or an errno value. */
int read_file(const std::string &path, PageString &content, FileSignature &before, FileSignature &after)
{
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) {
        return errno;
    }
    struct stat st;
    if (::fstat(f.fd, &st) != 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return EINVAL;
    }
    before = signature_of(st);
    content.clear();
    content.reserve(static_cast<std::size_t>(st.st_size) + 1);
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::read(f.fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            break;
        }
        content.append(chunk, static_cast<std::size_t>(n));
    }
    if (::stat(path.c_str(), &st) != 0) {
        return errno;
    }
    after = signature_of(st);
    return 0;
}

} // namespace

int stat_signature(const std::string &path, FileSignature &out) noexcept
{
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        return errno;
    }
    out = signature_of(st);
    return 0;
}

std::shared_ptr<const UserFileState> UserFile::current() const
{
    std::lock_guard<std::mutex> lock(state_mutex_);
    return state_;
}

void UserFile::publish(std::shared_ptr<const UserFileState> next)
{
    std::shared_ptr<const UserFileState> old;
    {
        std::lock_guard<std::mutex> lock(state_mutex_);
        old = std::move(state_);
        state_ = std::move(next);
    }
    if (old) {
        retired_.push_back(std::move(old));
    }
    reap_retired();
}

void UserFile::reap_retired() noexcept
{
    // Unpublished, so nobody can take a new reference: a count of 1 (ours)
    // means no reader has it any more.
    retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                  [](const std::shared_ptr<const UserFileState> &s) { return s.use_count() == 1; }),
                   retired_.end());
}

bool UserFile::check_readable(const Logger &log)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    const Fd f{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd >= 0) {
        return false;
    }
    const int err = errno;
    auto next = std::make_shared<UserFileState>();
    next->error = "could not open password file " + path_ + ": " + errno_text(err);
    {
        const std::shared_ptr<const UserFileState> old = current();
        if (old && !old->index && old->error == next->error) {
            return false;
        }
    }
    // The empty signature makes the next refresh() read the file again.
    log(LogLevel::error, next->error + "; refusing everyone until it is readable again");
    publish(std::move(next));
    return true;
}

std::shared_ptr<const UserFileState> UserFile::state(const Logger &log)
{
    if (auto s = current()) {
        return s;
    }
    refresh(log);
    return current();
}

void UserFile::set_shared_dir(const std::string &dir)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    shared_dir_ = dir;
}

bool UserFile::release_shared_index()
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    {
        const std::shared_ptr<const UserFileState> old = current();
        if (!old || !old->index || !old->index->is_mapped()) {
            return false;
        }
    }
    publish(nullptr); // frees it now, unless a reader holds it
    return true;
}

std::shared_ptr<const HtpasswdIndex> UserFile::map_shared(const std::string &index_path, const FileSignature &now,
                                                          const Logger &log, bool &broken)
{
    std::string why;
    auto index = open_shared_index(index_path, now, why);
    broken = !index && !why.empty();
    if (!index) {
        if (broken) {
            log(LogLevel::warning, "shared index " + index_path + " of " + path_ + " is unusable (" + why +
                                       "); reading the file instead");
        }
        return nullptr;
    }
    // This process must be able to read the file itself, as if it parsed it.
    const Fd f{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) {
        return nullptr;
    }
    return index;
}

void UserFile::share(std::shared_ptr<const HtpasswdIndex> &index, const std::string &index_path, const Logger &log)
{
    std::string why;
    auto mapped = write_shared_index(*index, index_path, why);
    if (!mapped) {
        if (why != shared_failure_) {
            log(LogLevel::warning, "cannot share the index of " + path_ + " through " + shared_dir_ + " (" + why +
                                       "); this process keeps a private copy");
            shared_failure_ = why;
        }
        return;
    }
    shared_failure_.clear();
    index = std::move(mapped); // frees the heap copy
}

bool UserFile::refresh(const Logger &log)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    const bool published = load(log);
    // The state load() replaced (and whatever readers held at an earlier
    // swap) is freed here, in the loading thread, unless a reader still has it.
    reap_retired();
    return published;
}

bool UserFile::load(const Logger &log)
{
    const std::shared_ptr<const UserFileState> old = current();

    FileSignature now;
    const int stat_error = stat_signature(path_, now);
    if (stat_error == 0 && old && old->signature == now) {
        return false; // unchanged since the last look (loaded or broken alike)
    }

    const auto started = std::chrono::steady_clock::now();
    auto next = std::make_shared<UserFileState>();
    auto elapsed_ms = [&started] {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - started).count());
    };

    // One process builds the shared index of this file version; the others
    // wait for it and map it. Index files are renamed into place whole, so
    // mapping (and its O(users) checks) needs no lock and runs in parallel;
    // the lock only makes the others wait while one builds.
    std::string index_path;
    std::unique_ptr<SharedIndexLock> shared_lock;
    if (stat_error == 0 && !shared_dir_.empty()) {
        index_path = shared_index_path(shared_dir_, path_);
        bool broken = false;
        auto mapped = map_shared(index_path, now, log, broken);
        if (!mapped) {
            shared_lock = std::make_unique<SharedIndexLock>(index_path);
            if (!broken && shared_index_is_for(index_path, now)) {
                shared_lock.reset(); // another process built it while we waited
                mapped = map_shared(index_path, now, log, broken);
            }
        }
        if (mapped) {
            next->index = std::move(mapped);
            next->signature = now;
            log(LogLevel::info, (old ? "reloaded " : "loaded ") + path_ + ": " +
                                    std::to_string(next->index->size()) + " users in " + elapsed_ms() +
                                    " ms (mapped shared index " + index_path + ")");
            publish(std::move(next));
            return true;
        }
    }
    FileSignature after;
    PageString content;
    int err = stat_error;
    for (int attempt = 0; err == 0; ++attempt) {
        err = read_file(path_, content, next->signature, after);
        const bool emptied = content.empty() && old && old->index && old->index->size() > 0;
        if (err != 0 || (after == next->signature && !emptied) || attempt == kSettleAttempts) {
            break;
        }
        // A writer is at work (htpasswd truncates, then writes): give it a
        // moment rather than serve a partial file for a whole interval.
        std::this_thread::sleep_for(kSettlePause);
    }
    if (err != 0) {
        next->error = "could not open password file " + path_ + ": " + errno_text(err);
        next->signature = FileSignature{};
        if (old && !old->index && old->error == next->error) {
            return false; // still broken the same way: said once already
        }
        log(LogLevel::error, next->error + "; refusing everyone until it is readable again");
        publish(std::move(next));
        return true;
    }

    std::vector<Diagnostic> diagnostics;
    try {
        next->index = std::make_shared<const HtpasswdIndex>(content, &diagnostics, next->signature);
        PageString().swap(content); // the index holds its own copy
    }
    catch (const std::exception &e) {
        next->error = "could not index password file " + path_ + ": " + e.what();
        log(LogLevel::error, next->error);
        publish(std::move(next));
        return true;
    }
    std::size_t logged = 0;
    for (const Diagnostic &d : diagnostics) {
        if (logged++ == kMaxLoggedDiagnostics) {
            log(LogLevel::warning, path_ + ": " + std::to_string(diagnostics.size() - kMaxLoggedDiagnostics) +
                                       " more notes not shown");
            break;
        }
        log(d.warning ? LogLevel::warning : LogLevel::info,
            path_ + " line " + std::to_string(d.line) + ": " + d.message);
    }
    if (after != next->signature) {
        // Caught mid-write: serve what was read (it can only hold fewer or
        // truncated entries, which never match) and read again next time.
        log(LogLevel::info, path_ + " changed while it was read; it will be read again");
        next->signature = FileSignature{};
    }
    else if (!index_path.empty()) {
        // Only a settled read is shared: others trust its signature.
        share(next->index, index_path, log);
    }
    log(LogLevel::info, (old ? "reloaded " : "loaded ") + path_ + ": " +
                            std::to_string(next->index->size()) + " users in " + elapsed_ms() + " ms");
    publish(std::move(next));
    return true;
}

} // namespace auth_proxy
