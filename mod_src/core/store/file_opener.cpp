#include "auth_proxy/store/file_opener.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>

#include <fcntl.h>
#include <linux/magic.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace auth_proxy {

namespace {

/** The flags of every user file open: read-only, never waiting on a FIFO, never a controlling tty. */
constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

/** How long a request waits for the opener: an open that takes longer (a hung NFS server) fails. */
constexpr std::chrono::milliseconds kRequestTimeout{10000};

/** The descriptor the opener keeps its socket on; every other one above stderr is closed. */
constexpr int kOpenerSocket = 3;

/**
 * Opens a user file; -1 and errno on failure. A file on /proc is refused:
 * /proc/self there is the opening process (the opener, not a server
 * process), and what it holds (its memory map, inherited from the parent)
 * would end up in an index the User can read. Async-signal-safe.
 */
int open_user_file(const char *path) noexcept
{
    const int fd = ::open(path, kOpenFlags);
    if (fd < 0) {
        return -1;
    }
    struct statfs fs;
    if (::fstatfs(fd, &fs) != 0 || fs.f_type == PROC_SUPER_MAGIC) {
        ::close(fd);
        errno = EACCES;
        return -1;
    }
    return fd;
}

/** One descriptor's worth of control message space. */
union FdControl {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
};

/** Sends @p data with @p fd attached (none if -1). Returns 0 or errno. */
int send_with_fd(int socket, const void *data, std::size_t size, int fd, int flags) noexcept
{
    struct iovec iov = {const_cast<void *>(data), size};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    FdControl control;
    std::memset(&control, 0, sizeof control);
    if (fd >= 0) {
        msg.msg_control = control.buffer;
        msg.msg_controllen = sizeof control.buffer;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    for (;;) {
        if (::sendmsg(socket, &msg, flags | MSG_NOSIGNAL) >= 0) {
            return 0;
        }
        if (errno != EINTR) {
            return errno;
        }
    }
}

/**
 * Receives one message into @p data, and the descriptor it carries (if
 * any, close-on-exec) into @p fd. Returns its size, 0 at end of stream, or
 * -1 with errno set. @p truncated: the message or its control data did not fit.
 */
ssize_t receive_with_fd(int socket, void *data, std::size_t size, int &fd, bool &truncated) noexcept
{
    fd = -1;
    struct iovec iov = {data, size};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    FdControl control;
    msg.msg_control = control.buffer;
    msg.msg_controllen = sizeof control.buffer;
    ssize_t n;
    do {
        n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int received;
            std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
            if (fd < 0) {
                fd = received;
            }
            else {
                ::close(received); // one answer socket per request: extras are not ours to keep
            }
        }
    }
    truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    return n;
}

/** Closes every descriptor above @p keep (itself above stderr). */
void close_descriptors_above(int keep) noexcept
{
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U) == 0) {
        return;
    }
#endif
    struct rlimit limit;
    const rlim_t top = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                           ? limit.rlim_cur
                           : static_cast<rlim_t>(65536);
    for (rlim_t fd = static_cast<rlim_t>(keep) + 1; fd < top; ++fd) {
        ::close(static_cast<int>(fd));
    }
}

/** The opener's life after fork(): become the User, serve, exit. Never returns. */
[[noreturn]] void opener_main(int socket, const Identity &who, pid_t parent, int ready) noexcept
{
    // Signals the parent's process group gets (prefork's graceful restart)
    // are not for the opener: it ends when its socket does, or on SIGTERM.
    for (const int sig : {SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGINT, SIGPIPE}) {
        ::signal(sig, SIG_IGN);
    }
    for (const int sig : {SIGTERM, SIGCHLD, SIGALRM}) {
        ::signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
        ::_exit(0);
    }
    // The answer to start(): 0 or why the opener cannot serve.
    const std::int32_t status = become(who);
    if (::write(ready, &status, sizeof status) != static_cast<ssize_t>(sizeof status) || status != 0) {
        ::_exit(1);
    }
    if (socket != kOpenerSocket && ::dup2(socket, kOpenerSocket) < 0) {
        ::_exit(1);
    }
    // Nothing the parent had open (logs, listeners, the index directory) stays with the User.
    close_descriptors_above(kOpenerSocket);
    ::_exit(serve_open_requests(kOpenerSocket) == 0 ? 0 : 1);
}

} // namespace

OpenResult open_with_own_rights(const std::string &path) noexcept
{
    OpenResult result;
    const int fd = open_user_file(path.c_str());
    if (fd < 0) {
        result.error = errno;
    }
    result.fd.reset(fd);
    return result;
}

OpenResult DirectOpener::open(const std::string &path) const noexcept
{
    return open_with_own_rights(path);
}

std::vector<gid_t> groups_of(const std::string &name, gid_t gid, std::string &error)
{
    int count = 32;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    for (int attempt = 0; attempt < 8; ++attempt) {
        int n = count;
        if (::getgrouplist(name.c_str(), gid, groups.data(), &n) >= 0) {
            groups.resize(static_cast<std::size_t>(n));
            return groups;
        }
        count = n > count ? n : count * 2; // n: how many there are
        groups.resize(static_cast<std::size_t>(count));
    }
    error = "cannot list the groups of " + name;
    return {};
}

int become(const Identity &who) noexcept
{
    if (::geteuid() == 0) {
        if (::setgroups(who.groups.size(), who.groups.data()) != 0 ||
            ::setresgid(who.gid, who.gid, who.gid) != 0 || ::setresuid(who.uid, who.uid, who.uid) != 0) {
            return errno;
        }
    }
    else if (::geteuid() != who.uid || ::getegid() != who.gid) {
        return EPERM; // only root can become someone else
    }
    uid_t ruid = 0;
    uid_t euid = 0;
    uid_t suid = 0;
    gid_t rgid = 0;
    gid_t egid = 0;
    gid_t sgid = 0;
    if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0) {
        return errno;
    }
    if (ruid != who.uid || euid != who.uid || suid != who.uid || rgid != who.gid || egid != who.gid ||
        sgid != who.gid) {
        return EPERM;
    }
    if (who.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
        return EPERM; // root could be regained: not the User
    }
    if (::prctl(PR_SET_DUMPABLE, 0) != 0) {
        return errno;
    }
    return 0;
}

int serve_open_requests(int socket) noexcept
{
    char path[PATH_MAX + 1];
    for (;;) {
        int answer = -1;
        bool truncated = false;
        const ssize_t n = receive_with_fd(socket, path, sizeof path - 1, answer, truncated);
        if (n < 0) {
            return errno;
        }
        if (n == 0 && answer < 0) {
            return 0; // every requester has closed its end
        }
        if (answer < 0) {
            continue; // nowhere to answer
        }
        std::int32_t err = 0;
        int fd = -1;
        if (truncated) {
            err = ENAMETOOLONG;
        }
        else if (n == 0 || std::memchr(path, '\0', static_cast<std::size_t>(n)) != nullptr) {
            err = EINVAL;
        }
        else {
            path[n] = '\0';
            fd = open_user_file(path);
            if (fd < 0) {
                err = errno;
            }
        }
        // A requester that gave up (timed out) has closed its end: nothing to do then.
        send_with_fd(answer, &err, sizeof err, fd, MSG_DONTWAIT);
        if (fd >= 0) {
            ::close(fd);
        }
        ::close(answer);
    }
}

OpenResult request_open(int socket, const std::string &path, std::chrono::milliseconds timeout) noexcept
{
    OpenResult result;
    auto fail = [&result](int err) -> OpenResult {
        result.opener_failed = true;
        result.error = err;
        return std::move(result);
    };
    if (path.empty() || path.find('\0') != std::string::npos) {
        result.error = EINVAL;
        return result;
    }
    if (path.size() > PATH_MAX) {
        result.error = ENAMETOOLONG;
        return result;
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        return fail(errno);
    }
    const UniqueFd mine(pair[0]);
    UniqueFd theirs(pair[1]);
    if (const int err = send_with_fd(socket, path.data(), path.size(), theirs.get(), 0); err != 0) {
        return fail(err);
    }
    theirs.reset(); // the opener holds it now: if it dies, our end reads end of stream
    struct pollfd p = {mine.get(), POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready =
            ::poll(&p, 1, static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count() + 1, 0)));
        if (ready > 0) {
            break;
        }
        if (ready == 0 && std::chrono::steady_clock::now() >= deadline) {
            return fail(ETIMEDOUT);
        }
        if (ready == 0) {
            continue; // poll() counts in whole milliseconds: woken a little early
        }
        if (errno != EINTR) {
            return fail(errno);
        }
    }
    std::int32_t err = 0;
    int fd = -1;
    bool truncated = false;
    const ssize_t n = receive_with_fd(mine.get(), &err, sizeof err, fd, truncated);
    UniqueFd received(fd);
    if (n < 0) {
        return fail(errno);
    }
    if (n != static_cast<ssize_t>(sizeof err) || truncated) {
        return fail(n == 0 ? ECONNRESET : EPROTO); // end of stream: the opener died on this request
    }
    if (err != 0) {
        result.error = err;
        return result;
    }
    if (!received) {
        return fail(EPROTO);
    }
    result.fd = std::move(received);
    return result;
}

std::unique_ptr<OpenerProcess> OpenerProcess::start(const Identity &who, std::string &error)
{
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        error = errno_text("socketpair", errno);
        return nullptr;
    }
    UniqueFd requests(pair[0]);
    UniqueFd served(pair[1]);
    int status_pipe[2];
    if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
        error = errno_text("pipe", errno);
        return nullptr;
    }
    UniqueFd status_read(status_pipe[0]);
    UniqueFd status_write(status_pipe[1]);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        error = errno_text("fork", errno);
        return nullptr;
    }
    if (pid == 0) {
        opener_main(served.get(), who, parent, status_write.get());
    }
    served.reset();
    status_write.reset();
    std::int32_t status = 0;
    ssize_t n;
    do {
        n = ::read(status_read.get(), &status, sizeof status);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof status) || status != 0) {
        error = n == static_cast<ssize_t>(sizeof status) ? errno_text("cannot become " + who.name, status)
                                                         : "the opener process ended before it was ready";
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return nullptr;
    }
    return std::unique_ptr<OpenerProcess>(new OpenerProcess(pid, std::move(requests), who.name));
}

OpenerProcess::~OpenerProcess() = default;

OpenResult OpenerProcess::open(const std::string &path) const noexcept
{
    if (!socket_) {
        OpenResult result;
        result.error = EBADF;
        result.opener_failed = true;
        return result;
    }
    return request_open(socket_.get(), path, kRequestTimeout);
}

} // namespace auth_proxy
