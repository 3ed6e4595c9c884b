#include "auth_proxy/store/user_file.hpp"

#include "auth_proxy/store/index_directory.hpp"
#include "auth_proxy/metrics.hpp"
#include "auth_proxy/posix.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
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

/** Reads the whole of @p f, opened from @p path; returns 0 or an errno value. */
int read_file(const UniqueFd &f, const std::string &path, PageString &content, FileSignature &before,
              FileSignature &after)
{
    struct stat st;
    if (::fstat(f.get(), &st) != 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return EINVAL;
    }
    if (st.st_size >= static_cast<off_t>(std::numeric_limits<std::uint32_t>::max() - 8)) {
        return EFBIG; // the index addresses the text with 32-bit offsets
    }
    before = signature_of(st);
    content.clear();
    content.reserve(static_cast<std::size_t>(st.st_size) + 1);
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::read(f.get(), chunk, sizeof chunk);
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

OpenResult UserFile::open_file() const
{
    return opener_ != nullptr ? opener_->open(path_) : open_with_own_rights(path_);
}

std::string UserFile::open_error(const OpenResult &failed) const
{
    const std::string as = opener_ == nullptr || opener_->who().empty() ? std::string() : " by " + opener_->who();
    if (failed.opener_failed) {
        return "user file " + path_ + " cannot be opened" + as + ": the opener process did not answer (" +
               errno_text(failed.error) + ")";
    }
    return "user file " + path_ + " cannot be opened" + as + ": " + errno_text(failed.error);
}

std::shared_ptr<const UserFileState> UserFile::state(const Logger &log)
{
    if (auto s = current()) {
        return s;
    }
    activate();
    refresh(log);
    return current();
}

void UserFile::set_index_directory(const IndexDirectory *dir, IndexRole role)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    directory_ = dir;
    role_ = dir != nullptr && dir->usable() ? role : IndexRole::private_copy;
}

void UserFile::set_writer_grace(std::chrono::milliseconds grace)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    writer_grace_ = grace;
}

void UserFile::set_opener(const FileOpener *opener)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    opener_ = opener;
}

void UserFile::set_metrics(Metrics *metrics)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    metrics_ = metrics;
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

bool UserFile::refresh(const Logger &log)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    const bool published = load(log);
    // The state load() replaced (and whatever readers held at an earlier
    // swap) is freed here, in the loading thread, unless a reader still has it.
    reap_retired();
    return published;
}

void UserFile::publish_index(std::shared_ptr<const HtpasswdIndex> index, const FileSignature &signature,
                             std::chrono::steady_clock::time_point started, const std::string &how, bool reload,
                             const Logger &log)
{
    const auto took = std::chrono::steady_clock::now() - started;
    const std::size_t users = index->size();
    auto next = std::make_shared<UserFileState>();
    next->index = std::move(index);
    next->signature = signature;
    waiting_for_ = FileSignature{};
    publish(std::move(next)); // in use from here on: the log line and the counters come after
    // A version caught mid-write (no signature) is read again: the settled read is the one that counts.
    if (metrics_ != nullptr && signature != FileSignature{}) {
        metrics_->file_indexed(path_, signature, reload, took);
    }
    log(LogLevel::info, LogId::file_loaded,
        (reload ? "reloaded " : "loaded ") + path_ + ": " + std::to_string(users) + " users in " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) + " ms" + how);
}

std::shared_ptr<UserFileState> UserFile::parse(const Logger &log, bool &settled, LogId &id)
{
    auto next = std::make_shared<UserFileState>();
    const std::shared_ptr<const UserFileState> old = current();
    FileSignature after;
    PageString content;
    int err = 0;
    for (int attempt = 0;; ++attempt) {
        const OpenResult opened = open_file();
        if (!opened.fd) {
            next->error = open_error(opened);
            next->signature = FileSignature{};
            id = opened.opener_failed ? LogId::file_opener_failed : LogId::file_not_openable;
            return next;
        }
        err = read_file(opened.fd, path_, content, next->signature, after);
        const bool emptied = content.empty() && old && old->index && old->index->size() > 0;
        if (err != 0 || (after == next->signature && !emptied) || attempt == kSettleAttempts) {
            break;
        }
        // A writer is at work (htpasswd truncates, then writes): give it a
        // moment rather than serve a partial file for a whole interval.
        std::this_thread::sleep_for(kSettlePause);
    }
    if (err != 0) {
        next->error = "could not read password file " + path_ + ": " + errno_text(err);
        next->signature = FileSignature{};
        id = LogId::file_unreadable;
        return next;
    }
    std::vector<Diagnostic> diagnostics;
    try {
        next->index = std::make_shared<const HtpasswdIndex>(content, &diagnostics, next->signature);
    }
    catch (const std::exception &e) {
        next->error = "could not index password file " + path_ + ": " + e.what();
        id = LogId::file_unreadable;
        return next;
    }
    std::size_t logged = 0;
    for (const Diagnostic &d : diagnostics) {
        if (logged++ == kMaxLoggedDiagnostics) {
            log(LogLevel::warning, LogId::file_lines_not_logged, path_ + ": " + std::to_string(diagnostics.size() - kMaxLoggedDiagnostics) +
                                       " more notes not shown");
            break;
        }
        log(d.warning ? LogLevel::warning : LogLevel::info, LogId::file_line,
            path_ + " line " + std::to_string(d.line) + ": " + d.message);
    }
    settled = after == next->signature;
    if (!settled) {
        // Caught mid-write: serve what was read (it can only hold fewer or
        // truncated entries, which never match) and read again next time.
        log(LogLevel::info, LogId::file_changed_while_read, path_ + " changed while it was read; it will be read again");
        next->signature = FileSignature{};
    }
    return next;
}

void UserFile::write_shared(std::shared_ptr<const HtpasswdIndex> &index, const Logger &log)
{
    std::string why;
    auto mapped = directory_->write_index(*index, index_file_name(path_), why);
    if (!mapped) {
        if (why != shared_failure_) {
            log(LogLevel::warning, LogId::index_not_shared, "cannot share the index of " + path_ + " through " + directory_->path() + " (" +
                                       why + "); this process keeps a private copy");
            shared_failure_ = why;
        }
        return;
    }
    shared_failure_.clear();
    index = std::move(mapped); // frees the heap copy
}

bool UserFile::load(const Logger &log)
{
    const std::shared_ptr<const UserFileState> old = current();
    const bool sharing = role_ != IndexRole::private_copy;
    const std::string name = sharing ? index_file_name(path_) : std::string();
    const std::string shared_path = sharing ? directory_->path() + "/" + name : std::string();
    const auto started = std::chrono::steady_clock::now();

    FileSignature now;
    const int stat_error = stat_signature(path_, now);
    if (stat_error == 0 && old && old->signature == now) {
        // Unchanged. A reader that had to parse a private copy moves to the
        // writer's index as soon as there is one.
        if (role_ != IndexRole::reader || !old->index || old->index->is_mapped() ||
            !directory_->has_index_for(name, now)) {
            return false;
        }
        std::string why;
        if (auto mapped = directory_->open_index(name, now, why)) {
            publish_index(std::move(mapped), now, started,
                          " (mapped shared index " + shared_path + " instead of a private copy)", true, log);
            return true;
        }
        return false;
    }

    if (stat_error == 0 && sharing) {
        std::string why;
        auto mapped = directory_->open_index(name, now, why);
        // The User must be able to open the file itself, as if it parsed it:
        // an index written while it could says nothing about now.
        const bool openable = static_cast<bool>(open_file().fd);
        if (mapped && openable) {
            publish_index(std::move(mapped), now, started, " (mapped shared index " + shared_path + ")",
                          old != nullptr, log);
            return true;
        }
        if (!why.empty() && why != shared_failure_) {
            log(LogLevel::warning, LogId::shared_index_unusable, "shared index " + shared_path + " of " + path_ + " is unusable (" + why +
                                       "); reading the file instead");
            shared_failure_ = why;
        }
        if (role_ == IndexRole::reader && !mapped && openable && old && old->index) {
            // The writer is building it: serve the previous version a little
            // longer rather than parse a copy in every process.
            const auto clock = std::chrono::steady_clock::now();
            if (waiting_for_ != now) {
                waiting_for_ = now;
                waiting_since_ = clock;
                return false;
            }
            if (clock - waiting_since_ < writer_grace_) {
                return false;
            }
            log(LogLevel::warning, LogId::shared_index_missing, "no shared index of " + path_ + " appeared within " +
                                       std::to_string(writer_grace_.count()) +
                                       " ms of its change; this process reads the file itself");
        }
    }

    bool settled = true;
    LogId error_id = LogId::file_unreadable;
    auto next = parse(log, settled, error_id);
    if (!next->index) {
        if (role_ == IndexRole::writer && error_id != LogId::file_opener_failed) {
            // Nothing of a file the User cannot use stays readable in the directory.
            directory_->remove_index(name);
        }
        if (old && !old->index && old->error == next->error) {
            return false; // still broken the same way: said once already
        }
        const std::string error = next->error;
        waiting_for_ = FileSignature{};
        publish(std::move(next)); // in force from here on, logged after
        if (metrics_ != nullptr) {
            metrics_->file_unusable(path_, error, old != nullptr);
        }
        const std::string line = error + "; refusing everyone until it is readable again";
        if (error_id == LogId::file_not_openable) {
            // A reader's writer meets the same file as the same User and says
            // so: one line per breakage, not one per server process.
            log(role_ == IndexRole::reader ? LogLevel::info : LogLevel::error, LogId::file_not_openable, line);
        }
        else if (error_id == LogId::file_opener_failed) {
            log(LogLevel::error, LogId::file_opener_failed, line);
        }
        else {
            log(LogLevel::error, LogId::file_unreadable, line);
        }
        return true;
    }
    if (settled && role_ == IndexRole::writer) {
        write_shared(next->index, log); // only a settled read: readers trust its signature
    }
    publish_index(std::move(next->index), next->signature, started, "", old != nullptr, log);
    return true;
}

} // namespace auth_proxy
