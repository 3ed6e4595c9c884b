/**
 * @file user_file.hpp
 * One AuthUserFile: its current index, reloaded when the file changes.
 */
#pragma once

#include "auth_proxy/htpasswd_index.hpp"
#include "auth_proxy/log.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

namespace auth_proxy {

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

    /**
     * Looks at the file and reloads it if its signature changed (or it was
     * never loaded). Serialised per file; readers are not blocked.
     * @return true if a new state was published.
     */
    bool refresh(const Logger &log);

    /**
     * Marks the file unusable if this process cannot open it: a child running
     * as www-data must not serve the copy its root parent loaded from a file
     * it may not read (it would fail only at the file's next change).
     * @return true if a new (unusable) state was published.
     */
    bool check_readable(const Logger &log);

    /**
     * Shares indexes through @p dir (see shared_index.hpp): a reload maps an
     * index another process built for the same file version, or builds it
     * there for the others. Empty: every process keeps a private index.
     */
    void set_shared_dir(const std::string &dir);

    /**
     * Forgets the current index if it is a mapped shared index file, so this
     * process no longer keeps its pages: the next state() or refresh() maps
     * it again (or the index of a newer version). A private index, or the
     * state of an unreadable file, is kept.
     * @return true if an index was let go.
     */
    bool release_shared_index();

private:
    /**
     * The index of the file version @p now from the shared directory, if one
     * is there; @p broken says a matching file was there but unusable.
     */
    std::shared_ptr<const HtpasswdIndex> map_shared(const std::string &index_path, const FileSignature &now,
                                                    const Logger &log, bool &broken);
    /** Replaces a freshly parsed @p index by its mapped, shared copy, if that works. */
    void share(std::shared_ptr<const HtpasswdIndex> &index, const std::string &index_path, const Logger &log);

    /** refresh() without the lock and the reaping. */
    bool load(const Logger &log);
    std::shared_ptr<const UserFileState> current() const;
    /** Swaps in @p next; the previous state is retired, not freed here. Under refresh_mutex_. */
    void publish(std::shared_ptr<const UserFileState> next);
    /** Frees the retired states no reader holds any more. Under refresh_mutex_. */
    void reap_retired() noexcept;

    const std::string path_;
    std::mutex refresh_mutex_;               ///< one loader at a time
    mutable std::mutex state_mutex_;         ///< guards state_ pointer only
    std::shared_ptr<const UserFileState> state_;
    std::string shared_dir_;                 ///< guarded by refresh_mutex_
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
