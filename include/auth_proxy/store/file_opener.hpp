/**
 * @file file_opener.hpp
 * Opening user files with the rights of the server's User.
 *
 * Stock httpd reads an AuthUserFile in the child, as the User. Our root
 * processes (the parent at start, the index builder) read user files on the
 * children's behalf and put what they read into index files the User can
 * read, so they must never read what the User could not: a user file the
 * User replaced by a link to /etc/shadow has to fail for them as it would
 * for a child. They ask an opener process instead, forked from root, that
 * has become exactly the User (uid, gid and supplementary groups, as
 * httpd's children are) and passes back the descriptor it opened, or the
 * errno its open(2) gave.
 *
 * A separate process rather than setfsuid()/setfsgid() around open(2): the
 * supplementary groups are per thread only through the raw setgroups system
 * call, which glibc's wrapper replaces by one that changes every thread, and
 * a /proc/self link resolved by a root process is that process's own.
 */
#pragma once

#include "auth_proxy/posix.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace auth_proxy {

/** What opening a file gave: a descriptor, or why there is none. */
struct OpenResult {
    UniqueFd fd;                ///< open read-only; empty on failure
    int error = 0;              ///< errno of the failed open(2) (or of the request)
    bool opener_failed = false; ///< the open was never tried (the opener process is gone): not the file's answer
};

/** Opens user files for reading on behalf of the User; thread-safe. */
class FileOpener {
public:
    virtual ~FileOpener() = default;

    /**
     * Opens @p path read-only, non-blocking (a FIFO planted under the name
     * never makes it wait) and close-on-exec, following links as the User.
     * A file on /proc is refused (EACCES): its /proc/self would be the
     * opening process.
     */
    virtual OpenResult open(const std::string &path) const noexcept = 0;

    /** Who the files are opened as, for log lines ("www-data"); empty if unknown. */
    const std::string &who() const noexcept { return who_; }

protected:
    explicit FileOpener(std::string who) : who_(std::move(who)) {}

private:
    std::string who_;
};

/** Opens @p path as FileOpener::open() does, with this process's own rights. */
OpenResult open_with_own_rights(const std::string &path) noexcept;

/** Opens with this process's own rights: for a process that already is the User. */
class DirectOpener final : public FileOpener {
public:
    explicit DirectOpener(std::string who = std::string()) : FileOpener(std::move(who)) {}
    OpenResult open(const std::string &path) const noexcept override;
};

/** The credentials of httpd's children: whom the opener process becomes. */
struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups; ///< supplementary groups, as initgroups() would set them
    std::string name;          ///< the user name, for log lines
};

/**
 * The supplementary groups initgroups(@p name, @p gid) would give, looked up
 * through NSS (so not in a freshly forked child); empty and @p error set on
 * failure.
 */
std::vector<gid_t> groups_of(const std::string &name, gid_t gid, std::string &error);

/**
 * Takes on @p who for good: supplementary groups, gid, uid (in that order,
 * while the rights to change them last), then makes the process non-dumpable
 * so that the User can neither trace it nor read its /proc files (its own
 * /proc/self/environ included: it holds the parent's environment). Checks that
 * root cannot be regained. Returns 0 or an errno value. Async-signal-safe.
 */
int become(const Identity &who) noexcept;

/**
 * Serves open requests arriving on @p socket until every requester's end
 * is closed; returns 0 then, or an errno value if receiving fails. Each
 * request carries the path and the socket to answer on. Allocates nothing
 * (it runs in a freshly forked child).
 */
int serve_open_requests(int socket) noexcept;

/**
 * Asks the opener listening on @p socket to open @p path and waits up to
 * @p timeout for the answer. Several threads (and processes) may ask at
 * once: each request carries its own answer socket.
 */
OpenResult request_open(int socket, const std::string &path, std::chrono::milliseconds timeout) noexcept;

/**
 * A process that has become the User and opens files on request. It lives
 * until every process holding its socket has closed it (see close_here())
 * or the process that started it dies.
 */
class OpenerProcess final : public FileOpener {
public:
    /**
     * Forks the opener from this process (root) and has it become @p who.
     * Call it where the caller has no other threads. Null and @p error on
     * failure, also when the opener cannot become @p who.
     */
    static std::unique_ptr<OpenerProcess> start(const Identity &who, std::string &error);

    ~OpenerProcess() override;
    OpenerProcess(const OpenerProcess &) = delete;
    OpenerProcess &operator=(const OpenerProcess &) = delete;

    OpenResult open(const std::string &path) const noexcept override;

    pid_t pid() const noexcept { return pid_; }

    /**
     * Closes this process's end of the socket, without waiting for the
     * opener: for forked processes that never ask it (httpd's children).
     * open() fails afterwards.
     */
    void close_here() noexcept { socket_.reset(); }

private:
    OpenerProcess(pid_t pid, UniqueFd socket, std::string who)
        : FileOpener(std::move(who)), pid_(pid), socket_(std::move(socket)) {}

    pid_t pid_;
    UniqueFd socket_;
};

} // namespace auth_proxy
