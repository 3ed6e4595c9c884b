/**
 * @file shared_index.hpp
 * Index files that every server process maps, so the page cache holds one
 * copy of a user file's index instead of one per process.
 */
#pragma once

#include "auth_proxy/file_signature.hpp"
#include "auth_proxy/htpasswd_index.hpp"

#include <memory>
#include <string>

namespace auth_proxy {

/** Where the index of the user file @p source lives in @p dir: "<dir>/<hash of path>.idx". */
std::string shared_index_path(const std::string &dir, const std::string &source);

/**
 * An exclusive lock on "<index>.lock" while one process checks and builds
 * an index, so the others wait for it and map it instead of parsing too.
 * Waits at most a few seconds; without the lock everything still works,
 * only maybe twice.
 */
class SharedIndexLock {
public:
    explicit SharedIndexLock(const std::string &index_path) noexcept;
    ~SharedIndexLock();
    SharedIndexLock(const SharedIndexLock &) = delete;
    SharedIndexLock &operator=(const SharedIndexLock &) = delete;

    bool held() const noexcept { return held_; }

private:
    int fd_ = -1;
    bool held_ = false;
};

/**
 * Maps the index at @p index_path if it was built from the file version
 * @p expected. Null if it is missing or stale (@p error empty) or broken
 * (@p error says why).
 */
std::shared_ptr<const HtpasswdIndex> open_shared_index(const std::string &index_path, const FileSignature &expected,
                                                       std::string &error);

/** True if the index at @p index_path says it was built from @p expected (header only). */
bool shared_index_is_for(const std::string &index_path, const FileSignature &expected) noexcept;

/**
 * Writes @p built to a temporary file next to @p index_path, maps it and
 * renames it into place. Null and @p error on any failure (the caller keeps
 * @p built).
 */
std::shared_ptr<const HtpasswdIndex> write_shared_index(const HtpasswdIndex &built, const std::string &index_path,
                                                        std::string &error);

} // namespace auth_proxy
