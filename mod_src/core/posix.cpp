#include "auth_proxy/posix.hpp"

#include <cstring>
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

} // namespace auth_proxy
