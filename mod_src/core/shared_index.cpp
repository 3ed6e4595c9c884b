#include "auth_proxy/shared_index.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

/** How long a process waits for another one that builds the same index. */
constexpr std::chrono::seconds kLockWait{10};
constexpr std::chrono::milliseconds kLockPoll{5};

std::string errno_text(const char *what, int err)
{
    return std::string(what) + ": " + std::strerror(err);
}

struct Fd {
    int fd;
    ~Fd()
    {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

} // namespace

std::string shared_index_path(const std::string &dir, const std::string &source)
{
    std::uint64_t h = 0xcbf29ce484222325ull; // FNV-1a: stable across builds and runs
    for (const char c : source) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    }
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.idx", static_cast<unsigned long long>(h));
    return dir + "/" + name;
}

SharedIndexLock::SharedIndexLock(const std::string &index_path) noexcept
{
    // Read-only is enough for flock, and lets a child open the lock file
    // that its root parent created.
    fd_ = ::open((index_path + ".lock").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0) {
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + kLockWait;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || std::chrono::steady_clock::now() > deadline) {
            return;
        }
        std::this_thread::sleep_for(kLockPoll);
    }
    held_ = true;
}

SharedIndexLock::~SharedIndexLock()
{
    if (fd_ >= 0) {
        ::close(fd_); // releases the lock
    }
}

std::shared_ptr<const HtpasswdIndex> open_shared_index(const std::string &index_path, const FileSignature &expected,
                                                       std::string &error)
{
    error.clear();
    const Fd f{::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
    if (f.fd < 0) {
        if (errno != ENOENT) {
            error = errno_text("open", errno);
        }
        return nullptr;
    }
    struct stat st;
    if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        error = "not a regular file";
        return nullptr;
    }
    FileSignature source;
    if (HtpasswdIndex::peek_source(f.fd, source) && source != expected) {
        return nullptr; // stale: the normal case on a reload, not worth reading further
    }
    auto index = HtpasswdIndex::map(f.fd, error);
    if (!index || index->source() != expected) {
        return nullptr;
    }
    return index;
}

bool shared_index_is_for(const std::string &index_path, const FileSignature &expected) noexcept
{
    const Fd f{::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
    FileSignature source;
    return f.fd >= 0 && HtpasswdIndex::peek_source(f.fd, source) && source == expected;
}

std::shared_ptr<const HtpasswdIndex> write_shared_index(const HtpasswdIndex &built, const std::string &index_path,
                                                        std::string &error)
{
    std::string temp = index_path + ".XXXXXX";
    const Fd f{::mkstemp(&temp[0])};
    if (f.fd < 0) {
        error = errno_text("cannot create a file", errno);
        return nullptr;
    }
    auto give_up = [&](const std::string &why) -> std::shared_ptr<const HtpasswdIndex> {
        error = why;
        ::unlink(temp.c_str());
        return nullptr;
    };
    // Every server process reads it; the directory (0700) keeps others out.
    if (::fchmod(f.fd, 0644) != 0) {
        return give_up(errno_text("fchmod", errno));
    }
    const std::string_view bytes = built.serialized();
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return give_up(errno_text("write", errno));
        }
        done += static_cast<std::size_t>(n);
    }
    // Written by this process a moment ago, into a name only it knows: the
    // header and section checks suffice; the O(users) checks are for readers.
    auto mapped = HtpasswdIndex::map(f.fd, error, false);
    if (!mapped) {
        return give_up("written index does not read back: " + error);
    }
    if (::rename(temp.c_str(), index_path.c_str()) != 0) {
        return give_up(errno_text("rename", errno));
    }
    return mapped;
}

} // namespace auth_proxy
