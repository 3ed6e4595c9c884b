/**
 * @file file_signature.hpp
 * What identifies one version of a file on disk.
 */
#pragma once

#include <cstdint>

namespace auth_proxy {

/** Device, inode, size and both times: any write or replacement changes it. */
struct FileSignature {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::int64_t size = -1;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;

    bool operator==(const FileSignature &o) const noexcept
    {
        return device == o.device && inode == o.inode && size == o.size &&
               mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
    }
    bool operator!=(const FileSignature &o) const noexcept { return !(*this == o); }
};

} // namespace auth_proxy
