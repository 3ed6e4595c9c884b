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

namespace auth_proxy {

class IndexDirectory;
class Metrics;

/** What a process does with the index directory (see index_directory.hpp). */
enum class IndexRole {
    private_copy, ///< no directory: parse into this process's own memory
    writer,       ///< parse, write the index into the directory and map it (the parent at start, the builder)
    reader,       ///< map what the writer wrote; parse a private copy only if it does not deliver in time
};

/**
 * The state readers see: either an index, or the reason there is none.
 * Immutable; replaced as a whole.
 */
struct UserFileState {
    std::shared_ptr<const HtpasswdIndex> index; ///< null when the file is unusable
    std::string error;                          ///< why index is null, for the error log
    FileSignature signature;                    ///< of the file this state was read from
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

    /**
     * How long a reader keeps serving the previous index after the file
     * changed while it waits for the writer's new one, before it parses a
     * private copy instead (default 3 s; the writer normally takes far less).
     */
    void set_writer_grace(std::chrono::milliseconds grace);

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
     * index was come by, if not parsed).
     */
    void publish_index(std::shared_ptr<const HtpasswdIndex> index, const FileSignature &signature,
                       std::chrono::steady_clock::time_point started, const std::string &how, bool reload,
                       const Logger &log);
    /** Parses the file into a new state, or a state saying why it could not (and @p id, the number to log it with). */
    std::shared_ptr<UserFileState> parse(const Logger &log, bool &settled, LogId &id);
    /** Opens the file through the opener. */
    OpenResult open_file() const;
    /** The error text of a failed open(). */
    std::string open_error(const OpenResult &failed) const;
    /** Replaces a freshly parsed @p index by its mapped copy in the directory, if that works. */
    void write_shared(std::shared_ptr<const HtpasswdIndex> &index, const Logger &log);

    /** refresh() without the lock and the reaping. */
    bool load(const Logger &log);
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
    const FileOpener *opener_ = nullptr;
    std::chrono::milliseconds writer_grace_{3000};
    /** When this reader first saw a file version the writer had no index for yet. */
    std::chrono::steady_clock::time_point waiting_since_{};
    FileSignature waiting_for_;
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
