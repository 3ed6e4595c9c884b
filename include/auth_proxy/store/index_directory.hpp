/**
 * @file index_directory.hpp
 * The directory of index files every server process maps, so the page cache
 * holds one copy of a user file's index instead of one per process.
 *
 * The directory and its files decide who gets in, so only its writer may
 * write them: when httpd starts as root, that is root (the parent at start,
 * then the index builder process); the server's User, which web
 * applications run as, can read them but not create, replace, rewrite,
 * truncate or link them. Every file is opened relative to a directory
 * descriptor the parent opened (children inherit it), without following
 * links, and is used only if its owner, mode and link count say that nobody
 * else wrote it.
 */
#pragma once

#include "auth_proxy/file_signature.hpp"
#include "auth_proxy/store/htpasswd_index.hpp"
#include "auth_proxy/posix.hpp"

#include <memory>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <vector>

namespace auth_proxy {

/** Who owns the directory and its files, and with which modes. */
struct IndexOwnership {
    uid_t uid;          ///< the writer; the only owner a trusted file may have
    gid_t gid;          ///< the group that may read (the server's Group when started as root)
    mode_t dir_mode;    ///< e.g. 0750: never writable by group or others
    mode_t file_mode;   ///< e.g. 0640
};

/** The name of the index of the user file @p source: "<hash of path>.idx". */
std::string index_file_name(const std::string &source);

/**
 * Why a file in the directory may not be trusted, or empty if it may:
 * it is not a regular file, is owned by someone other than @p uid, is
 * writable by group or others, or has more than one link.
 */
std::string untrusted_reason(const struct stat &st, uid_t uid);

class IndexDirectory {
public:
    /**
     * Opens <parent>/<name>, creating it if needed, and makes it the
     * writer's: owner, group and mode set on the open descriptor (never by
     * path). An existing entry that is not a directory owned by the writer
     * (left by an older version, or planted) is renamed aside to
     * "<name>.untrusted-<number>" and a fresh directory made; @p notes says
     * so. On failure the result is unusable and @p error says why.
     */
    static IndexDirectory prepare(const std::string &parent, const std::string &name, const IndexOwnership &owner,
                                  std::string &error, std::vector<std::string> &notes);

    IndexDirectory() = default;

    bool usable() const noexcept { return static_cast<bool>(fd_); }
    int fd() const noexcept { return fd_.get(); }
    const std::string &path() const noexcept { return path_; }
    uid_t owner_uid() const noexcept { return owner_.uid; }

    /**
     * Removes what a crash or an older version can leave: temporary files,
     * lock files, links and other non-regular entries, index files that are
     * not trusted, and index files not named in @p keep. Returns the names
     * removed. Directories are left alone (nobody but the writer can make one).
     */
    std::vector<std::string> remove_stale(const std::vector<std::string> &keep) const;

    /**
     * Maps the index @p name if it is trusted and was built from the file
     * version @p expected. Null with @p error empty if it is missing or for
     * another version; null with @p error set if it is there but not usable.
     * Indexes owned by root are checked in O(1) (header and bounds), others
     * in full: a same-user writer could have crafted them.
     */
    std::shared_ptr<const HtpasswdIndex> open_index(const std::string &name, const FileSignature &expected,
                                                    std::string &error) const;

    /** True if a trusted index @p name built from @p expected is there (its header only is read). */
    bool has_index_for(const std::string &name, const FileSignature &expected) const noexcept;

    /**
     * Writes @p built as @p name: a temporary file created exclusively,
     * owned and moded as the directory says, written whole and renamed into
     * place. Returns the written file mapped, or null and @p error.
     */
    std::shared_ptr<const HtpasswdIndex> write_index(const HtpasswdIndex &built, const std::string &name,
                                                     std::string &error) const;

    /** Removes the index @p name, if there is one. */
    void remove_index(const std::string &name) const noexcept;

private:
    /** Opens @p name read-only, without following links, and checks it is trusted. */
    UniqueFd open_trusted(const std::string &name, std::string &error) const;

    UniqueFd fd_;
    std::string path_;
    IndexOwnership owner_{};
};

} // namespace auth_proxy
