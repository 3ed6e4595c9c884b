#include "auth_proxy/posix.hpp"

#include <cstring>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace auth_proxy {

void UniqueFd::reset(int fd) noexcept
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = fd;
}

std::string errno_text(int err)
{
    char buf[256];
    // GNU strerror_r returns the message, which need not be in buf.
    return std::string(strerror_r(err, buf, sizeof buf));
}

std::string errno_text(std::string_view what, int err)
{
    std::string out(what);
    out += ": ";
    out += errno_text(err);
    return out;
}

std::thread start_background_thread(std::function<void()> body)
{
    // A new thread inherits the mask it is created with.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    try {
        std::thread t(std::move(body));
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        return t;
    }
    catch (...) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        throw;
    }
}

} // namespace auth_proxy
