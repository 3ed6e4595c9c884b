#include "auth_proxy/store/user_file.hpp"

#include "auth_proxy/store/index_directory.hpp"
#include "auth_proxy/metrics.hpp"
#include "auth_proxy/posix.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
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

/** What check_user_file() says of a regular file over the size limit, besides errno values. */
constexpr int kTooLarge = -1;

/**
 * Checks that the opened @p fd can be a user file: a regular file of at
 * most @p limit bytes. Returns 0, an errno value or kTooLarge; @p st holds
 * what fstat() said, if it was reached.
 */
int check_user_file(const UniqueFd &fd, std::uint64_t limit, struct stat &st)
{
    if (::fstat(fd.get(), &st) != 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return EINVAL;
    }
    return static_cast<std::uint64_t>(st.st_size) > limit ? kTooLarge : 0;
}

/** The unusable state for what check_user_file() or read_users() returned. */
std::shared_ptr<UserFileState> unusable(const std::string &path, int err, std::uint64_t size, std::uint64_t limit)
{
    auto state = std::make_shared<UserFileState>();
    if (err == kTooLarge) {
        state->error = path + " is " + std::to_string(size) + " bytes, over the limit of " + std::to_string(limit) +
                       " bytes for a user file";
        state->error_id = LogId::file_too_large;
    }
    else {
        state->error = "could not read password file " + path + ": " + errno_text(err);
    }
    return state;
}

/**
 * Reads the file through an HtpasswdParser, a chunk at a time: what stays
 * in memory is the users, never the file. Returns 0, an errno value or
 * kTooLarge (@p size: the bytes it has, or had read when it passed @p limit).
 */
int read_users(const UniqueFd &f, const std::string &path, std::uint64_t limit, ParsedUsers &users,
               std::uint64_t &size, FileSignature &before, FileSignature &after,
               std::optional<std::string_view> only_user = std::nullopt)
{
    struct stat st {};
    const int err = check_user_file(f, limit, st);
    size = static_cast<std::uint64_t>(st.st_size);
    if (err != 0) {
        return err;
    }
    before = signature_of(st);
    HtpasswdParser parser;
    if (only_user) {
        parser.keep_only(*only_user);
    }
    std::uint64_t total = 0;
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
        total += static_cast<std::uint64_t>(n);
        if (total > limit) {
            size = total; // grown since the fstat()
            return kTooLarge;
        }
        if (!parser.feed(std::string_view(chunk, static_cast<std::size_t>(n)))) {
            break; // a line over the cap: nothing after it counts
        }
    }
    users = parser.finish();
    size = total;
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

bool UserFile::behind(const UserFileState &served) const noexcept
{
    FileSignature now;
    return stat_signature(path_, now) != 0 || now != served.signature || served.signature == FileSignature{};
}

std::shared_ptr<const UserFileState> UserFile::read_user(std::string_view user, const UserFileState *served) const
{
    const OpenResult opened = open_file();
    if (!opened.fd) {
        return not_openable(opened);
    }
    auto next = std::make_shared<UserFileState>();
    ParsedUsers users;
    std::uint64_t size = 0;
    FileSignature after;
    const int err = read_users(opened.fd, path_, size_limit_, users, size, next->signature, after, user);
    if (err != 0) {
        return unusable(path_, err, size, size_limit_);
    }
    // Caught mid-write, it can only lack the user or hold a truncated hash,
    // which never matches: as mod_authn_file would have read it.
    next->index = std::make_shared<const HtpasswdIndex>(users, nullptr, next->signature);
    if (served != nullptr && served->index) {
        next->typical = served->index; // an unknown user costs what it costs with the whole index
    }
    return next;
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

std::shared_ptr<UserFileState> UserFile::not_openable(const OpenResult &failed) const
{
    auto state = std::make_shared<UserFileState>();
    const std::string as = opener_ == nullptr || opener_->who().empty() ? std::string() : " by " + opener_->who();
    if (failed.opener_failed) {
        state->error = "user file " + path_ + " cannot be opened" + as + ": the opener process did not answer (" +
                       errno_text(failed.error) + ")";
        state->error_id = LogId::file_opener_failed;
    }
    else {
        state->error = "user file " + path_ + " cannot be opened" + as + ": " + errno_text(failed.error);
        state->error_id = LogId::file_not_openable;
    }
    return state;
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

void UserFile::set_size_limit(std::uint64_t bytes)
{
    std::lock_guard<std::mutex> serial(refresh_mutex_);
    size_limit_ = bytes;
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
                             const Logger &log, std::size_t unusable)
{
    const auto took = std::chrono::steady_clock::now() - started;
    const std::size_t users = index->size() - std::min(unusable, index->size());
    auto next = std::make_shared<UserFileState>();
    next->index = std::move(index);
    next->signature = signature;
    publish(std::move(next)); // in use from here on: the log line and the counters come after
    // A version caught mid-write (no signature) is read again: the settled read is the one that counts.
    if (metrics_ != nullptr && signature != FileSignature{}) {
        metrics_->file_indexed(path_, signature, reload, took);
    }
    const std::string ms = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    if (role_ == IndexRole::reader) {
        // The writer announced this version (APX02003) for the whole server.
        log(LogLevel::debug, LogId::index_mapped,
            "serving " + path_ + " from the index builder's index: " + std::to_string(users) + " users, after " + ms +
                " ms" + how);
        return;
    }
    // Only users who can log in are loaded; the others were named at warn level above.
    const std::string unusable_note =
        unusable == 0 ? std::string() : "; " + std::to_string(unusable) + " more can never log in (see above)";
    log(LogLevel::info, LogId::file_loaded,
        (reload ? "reloaded " : "loaded ") + path_ + ": " + std::to_string(users) + " users in " + ms + " ms" + how +
            unusable_note);
}

bool UserFile::publish_error(std::shared_ptr<UserFileState> next, const std::shared_ptr<const UserFileState> &old,
                             const Logger &log)
{
    if (old && !old->index && old->error == next->error) {
        return false; // still broken the same way: said once already
    }
    next->signature = FileSignature{}; // read again at the next look
    const std::string error = next->error;
    const LogId id = next->error_id;
    publish(std::move(next)); // in force from here on, logged after
    if (metrics_ != nullptr) {
        metrics_->file_unusable(path_, error, old != nullptr);
    }
    // A server process that meets a broken file says so at info: its index
    // builder meets the same file as the same User and says it at error, once
    // for the whole server.
    const bool reader = role_ == IndexRole::reader;
    switch (id) {
    case LogId::file_too_large:
        log(reader ? LogLevel::info : LogLevel::error, LogId::file_too_large,
            error + "; refusing everyone until it is smaller");
        break;
    case LogId::index_not_published:
        log(LogLevel::error, LogId::index_not_published, error + "; until it publishes one, requests read the file for their user");
        break;
    case LogId::file_not_openable:
        log(reader ? LogLevel::info : LogLevel::error, LogId::file_not_openable, error + "; refusing everyone until it is readable again");
        break;
    case LogId::file_opener_failed:
        log(LogLevel::error, LogId::file_opener_failed, error + "; refusing everyone until it is readable again");
        break;
    default:
        log(reader ? LogLevel::info : LogLevel::error, LogId::file_unreadable, error + "; refusing everyone until it is readable again");
        break;
    }
    return true;
}

std::shared_ptr<UserFileState> UserFile::parse(const Logger &log, bool &settled)
{
    auto next = std::make_shared<UserFileState>();
    const std::shared_ptr<const UserFileState> old = current();
    FileSignature after;
    ParsedUsers users;
    std::uint64_t size = 0;
    int err = 0;
    for (int attempt = 0;; ++attempt) {
        const OpenResult opened = open_file();
        if (!opened.fd) {
            return not_openable(opened);
        }
        err = read_users(opened.fd, path_, size_limit_, users, size, next->signature, after);
        const bool emptied = size == 0 && old && old->index && old->index->size() > 0;
        if (err != 0 || (after == next->signature && !emptied) || attempt == kSettleAttempts) {
            break;
        }
        // A writer is at work (htpasswd truncates, then writes): give it a
        // moment rather than serve a partial file for a whole interval.
        std::this_thread::sleep_for(kSettlePause);
    }
    if (err != 0) {
        return unusable(path_, err, size, size_limit_);
    }
    std::vector<Diagnostic> diagnostics;
    try {
        next->index = std::make_shared<const HtpasswdIndex>(users, &diagnostics, next->signature);
    }
    catch (const std::exception &e) {
        next->error = "could not index password file " + path_ + ": " + e.what();
        next->signature = FileSignature{};
        return next;
    }
    if (users.malformed.total() > 0) {
        log(LogLevel::warning, LogId::file_malformed_lines,
            path_ + ": " + std::to_string(users.malformed.total()) + " malformed lines ignored: " +
                users.malformed.describe(kMaxLineBytes));
    }
    users = ParsedUsers(); // the index has its own copy
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

bool UserFile::follow_writer(const std::shared_ptr<const UserFileState> &old, const FileSignature &now,
                             bool stat_ok, std::chrono::steady_clock::time_point started, const Logger &log)
{
    // What this process can see for itself, in O(1): a file it cannot open,
    // or one too large to be read, fails closed at once.
    {
        const OpenResult opened = open_file();
        if (!opened.fd) {
            return publish_error(not_openable(opened), old, log);
        }
        struct stat st {};
        const int err = check_user_file(opened.fd, size_limit_, st);
        if (err != 0) {
            return publish_error(unusable(path_, err, static_cast<std::uint64_t>(st.st_size), size_limit_), old, log);
        }
    }
    const std::string name = index_file_name(path_);
    const std::string shared_path = directory_->path() + "/" + name;
    std::string why;
    std::shared_ptr<const HtpasswdIndex> mapped;
    if (stat_ok) {
        mapped = directory_->open_index(name, now, why);
    }
    if (!mapped && !old && why.empty()) {
        // Nothing served yet (a process just started): serve the newest
        // version the writer published, as every other process does, until
        // it publishes this one. The writer removes the index of a file
        // that became unusable, so this is never a version from before that.
        mapped = directory_->open_newest_index(name, why);
    }
    if (mapped) {
        shared_failure_.clear();
        const FileSignature version = mapped->source();
        publish_index(std::move(mapped), version, started, " (" + shared_path + ")", old != nullptr, log);
        return true;
    }
    if (!why.empty() && why != shared_failure_) {
        log(LogLevel::warning, LogId::shared_index_refused, "shared index " + shared_path + " of " + path_ +
                                   " is unusable (" + why + "); waiting for the index builder to write it again");
        shared_failure_ = why;
    }
    if (!old) {
        auto next = std::make_shared<UserFileState>();
        next->error = "no index of " + path_ + " has been published by the index builder yet";
        next->error_id = LogId::index_not_published;
        return publish_error(std::move(next), old, log);
    }
    // The writer is building it: keep serving what this process has, whatever
    // the file's size, rather than parse a copy in every process.
    return false;
}

bool UserFile::load(const Logger &log)
{
    const std::shared_ptr<const UserFileState> old = current();
    const auto started = std::chrono::steady_clock::now();

    FileSignature now;
    const int stat_error = stat_signature(path_, now);
    if (stat_error == 0 && old && old->signature == now) {
        return false; // unchanged
    }
    if (role_ == IndexRole::reader) {
        return follow_writer(old, now, stat_error == 0, started, log);
    }

    const bool sharing = role_ == IndexRole::writer;
    const std::string name = sharing ? index_file_name(path_) : std::string();
    if (stat_error == 0 && sharing) {
        // Written already (by this process's earlier generation, or a builder before it).
        std::string why;
        auto mapped = directory_->open_index(name, now, why);
        // The User must be able to open the file itself, as if it parsed it:
        // an index written while it could says nothing about now.
        if (mapped && open_file().fd) {
            publish_index(std::move(mapped), now, started,
                          " (mapped shared index " + directory_->path() + "/" + name + ")", old != nullptr, log);
            return true;
        }
        if (!why.empty() && why != shared_failure_) {
            log(LogLevel::warning, LogId::shared_index_unusable, "shared index " + directory_->path() + "/" + name +
                                       " of " + path_ + " is unusable (" + why + "); reading the file instead");
            shared_failure_ = why;
        }
    }

    bool settled = true;
    auto next = parse(log, settled);
    if (!next->index) {
        if (sharing && next->error_id != LogId::file_opener_failed) {
            // Nobody may take up an older version of a file that is unusable
            // now, nor read one the User can no longer open.
            directory_->remove_index(name);
        }
        return publish_error(std::move(next), old, log);
    }
    const std::size_t unusable = next->index->unusable_users(); // the mapped copy does not know it
    if (settled && sharing) {
        write_shared(next->index, log); // only a settled read: readers trust its signature
    }
    publish_index(std::move(next->index), next->signature, started, "", old != nullptr, log, unusable);
    return true;
}

} // namespace auth_proxy
