#include "auth_proxy/store/index_directory.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

constexpr std::string_view kIndexSuffix = ".idx";
constexpr int kPrepareAttempts = 3;

bool ends_with(std::string_view s, std::string_view suffix) noexcept
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string octal(mode_t mode)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(mode & 07777));
    return buf;
}

/** A name no other writer can have picked: 16 hex digits from the kernel's generator. */
std::string random_suffix()
{
    unsigned char bytes[8] = {};
    if (::getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
        // Only the name is weaker; O_EXCL still refuses any existing entry.
        const auto t = static_cast<unsigned long long>(std::time(nullptr)) ^ static_cast<unsigned long long>(::getpid());
        for (std::size_t i = 0; i < sizeof bytes; ++i) {
            bytes[i] = static_cast<unsigned char>(t >> (8 * i));
        }
    }
    char hex[17];
    for (std::size_t i = 0; i < sizeof bytes; ++i) {
        std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    }
    return hex;
}

bool write_all(int fd, std::string_view bytes, std::string &error)
{
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = errno_text("write", errno);
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

std::string index_file_name(const std::string &source)
{
    char name[32];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(fnv1a(source)));
    return std::string(name) + std::string(kIndexSuffix);
}

std::string untrusted_reason(const struct stat &st, uid_t uid)
{
    if (!S_ISREG(st.st_mode)) {
        return "not a regular file";
    }
    if (st.st_uid != uid) {
        return "owned by uid " + std::to_string(st.st_uid) + ", not " + std::to_string(uid);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return "writable by group or others (mode " + octal(st.st_mode) + ")";
    }
    if (st.st_nlink != 1) {
        return "has " + std::to_string(st.st_nlink) + " links";
    }
    return std::string();
}

IndexDirectory IndexDirectory::prepare(const std::string &parent, const std::string &name,
                                       const IndexOwnership &owner, std::string &error,
                                       std::vector<std::string> &notes)
{
    std::string base = parent;
    while (base.size() > 1 && base.back() == '/') {
        base.pop_back();
    }
    const std::string path = base + "/" + name;
    const UniqueFd parent_fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_fd) {
        error = errno_text("open " + base, errno);
        return IndexDirectory();
    }
    for (int attempt = 0; attempt < kPrepareAttempts; ++attempt) {
        if (::mkdirat(parent_fd.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
            error = errno_text("mkdir " + path, errno);
            return IndexDirectory();
        }
        UniqueFd fd(::openat(parent_fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd && errno != ELOOP && errno != ENOTDIR) {
            error = errno_text("open " + path, errno);
            return IndexDirectory();
        }
        struct stat st;
        std::string why;
        if (!fd) {
            why = "not a directory";
        }
        else if (::fstat(fd.get(), &st) != 0) {
            error = errno_text("fstat " + path, errno);
            return IndexDirectory();
        }
        else if (st.st_uid != owner.uid) {
            why = "owned by uid " + std::to_string(st.st_uid) + ", not " + std::to_string(owner.uid);
        }
        if (why.empty()) {
            // Ours. Group and mode are set on the descriptor: a path could
            // have been swapped for a link since the open.
            if (::geteuid() == 0 && ::fchown(fd.get(), owner.uid, owner.gid) != 0) {
                error = errno_text("fchown " + path, errno);
                return IndexDirectory();
            }
            if (::fchmod(fd.get(), owner.dir_mode) != 0) {
                error = errno_text("fchmod " + path, errno);
                return IndexDirectory();
            }
            IndexDirectory dir;
            dir.fd_ = std::move(fd);
            dir.path_ = path;
            dir.owner_ = owner;
            return dir;
        }
        // Somebody else's (an older version's, or planted): set it aside
        // rather than adopt or empty it through paths it controls.
        const std::string aside = name + ".untrusted-" + random_suffix();
        if (::renameat(parent_fd.get(), name.c_str(), parent_fd.get(), aside.c_str()) != 0) {
            error = path + " is " + why + " and cannot be moved aside (" + errno_text("rename", errno) + ")";
            return IndexDirectory();
        }
        notes.push_back(path + " was " + why + "; moved aside to " + base + "/" + aside);
    }
    error = path + " kept being replaced while it was prepared";
    return IndexDirectory();
}

std::vector<std::string> IndexDirectory::remove_stale(const std::vector<std::string> &keep) const
{
    std::vector<std::string> removed;
    if (!usable()) {
        return removed;
    }
    // fdopendir() owns the descriptor it gets: give it a duplicate.
    DIR *d = ::fdopendir(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (d == nullptr) {
        return removed;
    }
    std::vector<std::string> names;
    while (const struct dirent *e = ::readdir(d)) {
        const std::string entry = e->d_name;
        if (entry != "." && entry != "..") {
            names.push_back(entry);
        }
    }
    ::closedir(d);
    for (const std::string &entry : names) {
        struct stat st;
        if (::fstatat(fd_.get(), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode)) {
            continue;
        }
        const bool wanted = ends_with(entry, kIndexSuffix) && untrusted_reason(st, owner_.uid).empty() &&
                            std::find(keep.begin(), keep.end(), entry) != keep.end();
        if (!wanted && ::unlinkat(fd_.get(), entry.c_str(), 0) == 0) {
            removed.push_back(entry);
        }
    }
    return removed;
}

UniqueFd IndexDirectory::open_trusted(const std::string &name, std::string &error) const
{
    error.clear();
    if (!usable()) {
        error = "no index directory";
        return UniqueFd();
    }
    // O_NONBLOCK: whatever the entry is, opening it never waits (a FIFO would).
    UniqueFd f(::openat(fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!f) {
        if (errno != ENOENT) {
            error = errno_text("open", errno);
        }
        return f;
    }
    struct stat st;
    if (::fstat(f.get(), &st) != 0) {
        error = errno_text("fstat", errno);
        return UniqueFd();
    }
    error = untrusted_reason(st, owner_.uid);
    if (!error.empty()) {
        error = "not trusted: " + error;
        return UniqueFd();
    }
    return f;
}

std::shared_ptr<const HtpasswdIndex> IndexDirectory::open_index(const std::string &name,
                                                                const FileSignature &expected,
                                                                std::string &error) const
{
    const UniqueFd f = open_trusted(name, error);
    if (!f) {
        return nullptr;
    }
    FileSignature source;
    if (HtpasswdIndex::peek_source(f.get(), source) && source != expected) {
        return nullptr; // stale: the normal case on a reload, not worth reading further
    }
    // A file only root can have written is as good as one we built; one
    // our own uid wrote may have been crafted by anything running as it.
    const auto checks = owner_.uid == 0 ? HtpasswdIndex::Checks::header : HtpasswdIndex::Checks::full;
    auto index = HtpasswdIndex::map(f.get(), error, checks);
    if (!index || index->source() != expected) {
        return nullptr;
    }
    return index;
}

void IndexDirectory::remove_index(const std::string &name) const noexcept
{
    if (usable()) {
        ::unlinkat(fd_.get(), name.c_str(), 0);
    }
}

bool IndexDirectory::has_index_for(const std::string &name, const FileSignature &expected) const noexcept
{
    try {
        std::string error;
        const UniqueFd f = open_trusted(name, error);
        FileSignature source;
        return f && HtpasswdIndex::peek_source(f.get(), source) && source == expected;
    }
    catch (...) {
        return false;
    }
}

std::shared_ptr<const HtpasswdIndex> IndexDirectory::write_index(const HtpasswdIndex &built, const std::string &name,
                                                                 std::string &error) const
{
    if (!usable()) {
        error = "no index directory";
        return nullptr;
    }
    const std::string temp = name + ".tmp-" + random_suffix();
    const UniqueFd f(::openat(fd_.get(), temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!f) {
        error = errno_text("cannot create a file", errno);
        return nullptr;
    }
    auto give_up = [&](const std::string &why) -> std::shared_ptr<const HtpasswdIndex> {
        error = why;
        ::unlinkat(fd_.get(), temp.c_str(), 0);
        return nullptr;
    };
    if (::geteuid() == 0 && ::fchown(f.get(), owner_.uid, owner_.gid) != 0) {
        return give_up(errno_text("fchown", errno));
    }
    if (::fchmod(f.get(), owner_.file_mode) != 0) {
        return give_up(errno_text("fchmod", errno));
    }
    std::string why;
    if (!write_all(f.get(), built.serialized(), why)) {
        return give_up(why);
    }
    // Written by this process a moment ago into a name nobody else can
    // open for writing: the header and bounds checks suffice.
    auto mapped = HtpasswdIndex::map(f.get(), why, HtpasswdIndex::Checks::header);
    if (!mapped) {
        return give_up("written index does not read back: " + why);
    }
    if (::renameat(fd_.get(), temp.c_str(), fd_.get(), name.c_str()) != 0) {
        return give_up(errno_text("rename", errno));
    }
    return mapped;
}

} // namespace auth_proxy
