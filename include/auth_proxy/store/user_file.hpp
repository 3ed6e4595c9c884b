/**
 * @file user_file.hpp
 * One AuthUserFile: its current index, reloaded when the file changes.
 */
#pragma once

#include "auth_proxy/store/file_opener.hpp"
#include "auth_proxy/store/htpasswd_index.hpp"
#include "auth_proxy/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>
#include <string>
#include <string_view>

namespace auth_proxy {

class IndexDirectory;
class Metrics;

/**
 * The largest user file read, in bytes. A larger one is refused whole (500
 * for its scopes, APX02030) before a byte of it is parsed. htpasswd lines
 * are well under 400 bytes, so this is over a million users in any format;
 * the index of a file this size needs about as much memory again while it
 * is built.
 */
constexpr std::uint64_t kMaxUserFileBytes = std::uint64_t{512} << 20;

/** What a process does with the index directory (see index_directory.hpp). */
enum class IndexRole {
    private_copy, ///< no directory: parse into this process's own memory
    writer,       ///< parse, write the index into the directory and map it (the parent at start, the builder)
    /**
     * Map what the writer published, never parse: keep the current index
     * until the writer publishes the file's new version. What the process
     * itself can check in O(1) (the file can be opened, is a regular file
     * under the size limit) it checks, and fails closed at once if not.
     */
    reader,
};

/**
 * The state readers see: either an index, or the reason there is none.
 * Immutable; replaced as a whole.
 */
struct UserFileState {
    std::shared_ptr<const HtpasswdIndex> index; ///< null when the file is unusable
    std::string error;                          ///< why index is null, for the error log
    LogId error_id = LogId::file_unreadable;    ///< the number the error was logged with
    FileSignature signature;                    ///< of the file this state was read from
    /**
     * Of a state read for one user (UserFile::read_user()): the index whose
     * typical hash an unknown user is verified against, as with the whole
     * file; null: index's own.
     */
    std::shared_ptr<const HtpasswdIndex> typical;
};

/**
 * An htpasswd file shared by every request and thread of a process.
 *
 * Readers take the current state (a shared_ptr copy under a short lock) and
 * never wait for a load: refresh() builds a complete new index first and
 * swaps it in afterwards. A file that cannot be read yields a state without
 * index, so requests fail closed.
 */
class UserFile {
public:
    explicit UserFile(std::string path) : path_(std::move(path)) {}

    const std::string &path() const noexcept { return path_; }

    /** The current state; loads the file first if it was never loaded. */
    std::shared_ptr<const UserFileState> state(const Logger &log);

    /** The current state as it is, without loading anything: null if never loaded. */
    std::shared_ptr<const UserFileState> current() const;

    /**
     * True if the file on disk may not be the version @p served was read
     * from: its signature differs, or it cannot be looked at. One stat(),
     * so a request can tell, before it trusts an index, whether it has to
     * read the file itself (read_user()) until the new index is in.
     */
    bool behind(const UserFileState &served) const noexcept;

    /**
     * The file as it is now, for @p user alone, as mod_authn_file reads it
     * on each request: opened (through the opener, as every read is), read
     * line by line until the user's first line, never held whole. A state
     * without index, saying why, if the file cannot be used. @p served (may
     * be null) is the state this process serves, whose typical hash an
     * unknown user pays. Not published: the index of the new version comes
     * from refresh(), off the request path. Thread-safe; the set_*()
     * settings must not change meanwhile (they are made before requests are
     * served).
     */
    std::shared_ptr<const UserFileState> read_user(std::string_view user, const UserFileState *served) const;

    /**
     * Looks at the file and reloads it if its signature changed (or it was
     * never loaded). Serialised per file; readers are not blocked.
     * @return true if a new state was published.
     */
    bool refresh(const Logger &log);

    /**
     * Shares indexes through @p dir (which must outlive this object) in
     * @p role; null: a private index (IndexRole::private_copy).
     */
    void set_index_directory(const IndexDirectory *dir, IndexRole role);

    /** The largest file read (default kMaxUserFileBytes); a larger one is unusable. */
    void set_size_limit(std::uint64_t bytes);

    /**
     * Opens the file through @p opener (which must outlive this object;
     * null: with this process's own rights). A root process passes one that
     * opens as the server's User: nothing the User could not open is read,
     * indexed or shared.
     */
    void set_opener(const FileOpener *opener);

    /**
     * Reports each version published, and each error, to @p metrics (which
     * must outlive this object; null: to nobody), which counts reloads.
     */
    void set_metrics(Metrics *metrics);

    /**
     * Forgets the current index if it is a mapped shared index file, so this
     * process no longer keeps its pages: the next state() or refresh() maps
     * it again (or the index of a newer version). A private index, or the
     * state of an unreadable file, is kept.
     * @return true if an index was let go.
     */
    bool release_shared_index();

    /**
     * Marks the file as used by a ProxyBasic scope: only such files are
     * read, indexed, watched and logged about. state() activates too.
     */
    void activate() noexcept { active_.store(true, std::memory_order_release); }
    bool active() const noexcept { return active_.load(std::memory_order_acquire); }

private:
    /**
     * A state with @p index for the file version @p signature, logged as
     * loaded or reloaded in the time since @p started, with @p how (how the
     * index was come by, if not parsed); @p unusable of its users can never
     * log in and are not counted as loaded.
     */
    void publish_index(std::shared_ptr<const HtpasswdIndex> index, const FileSignature &signature,
                       std::chrono::steady_clock::time_point started, const std::string &how, bool reload,
                       const Logger &log, std::size_t unusable = 0);
    /** A state without index, saying why; logged unless it repeats the current one. */
    bool publish_error(std::shared_ptr<UserFileState> next, const std::shared_ptr<const UserFileState> &old,
                       const Logger &log);
    /** Parses the file into a new state, or a state saying why it could not. */
    std::shared_ptr<UserFileState> parse(const Logger &log, bool &settled);
    /** Opens the file through the opener (or with this process's own rights). */
    OpenResult open_file() const;
    /** The unusable state for a failed open_file(): it names the file and who could not open it. */
    std::shared_ptr<UserFileState> not_openable(const OpenResult &failed) const;
    /** Replaces a freshly parsed @p index by its mapped copy in the directory, if that works. */
    void write_shared(std::shared_ptr<const HtpasswdIndex> &index, const Logger &log);

    /** refresh() without the lock and the reaping. */
    bool load(const Logger &log);
    /** load() for IndexRole::reader: follows what the writer publishes. */
    bool follow_writer(const std::shared_ptr<const UserFileState> &old, const FileSignature &now, bool stat_ok,
                       std::chrono::steady_clock::time_point started, const Logger &log);
    /** Swaps in @p next; the previous state is retired, not freed here. Under refresh_mutex_. */
    void publish(std::shared_ptr<const UserFileState> next);
    /** Frees the retired states no reader holds any more. Under refresh_mutex_. */
    void reap_retired() noexcept;

    const std::string path_;
    std::atomic<bool> active_{false};
    std::mutex refresh_mutex_;               ///< one loader at a time
    mutable std::mutex state_mutex_;         ///< guards state_ pointer only
    std::shared_ptr<const UserFileState> state_;
    // Guarded by refresh_mutex_:
    const IndexDirectory *directory_ = nullptr;
    IndexRole role_ = IndexRole::private_copy;
    Metrics *metrics_ = nullptr;
    std::uint64_t size_limit_ = kMaxUserFileBytes;
    const FileOpener *opener_ = nullptr;
    std::string shared_failure_;             ///< last sharing failure logged, to log it once
    /**
     * Replaced states, until no reader holds them (guarded by
     * refresh_mutex_). Freeing a large index (unmapping it, and dropping the
     * page cache of a replaced index file) takes milliseconds: this way it
     * happens in the loading thread at its next look, never in a request
     * thread that happened to hold the last reference.
     */
    std::vector<std::shared_ptr<const UserFileState>> retired_;
};

/** Reads the signature of @p path; returns errno on failure (0 on success). */
int stat_signature(const std::string &path, FileSignature &out) noexcept;

} // namespace auth_proxy
