/**
 * @file posix.hpp
 * The small POSIX helpers every part of the core shares: one owner of a
 * file descriptor, one way to turn errno into text, one string hash, one
 * way to start a background thread.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace auth_proxy {

/** Owns a file descriptor: closed when the owner goes, movable, not copyable. */
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd() { reset(); }

    UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept
    {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }

    /** Gives up ownership without closing. */
    int release() noexcept
    {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

    /** Closes the current descriptor (if any) and owns @p fd instead. */
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

/** The text of an errno value, e.g. "No such file or directory". */
std::string errno_text(int err);

/** "<what>: <errno text>", the form of every system call failure we report. */
std::string errno_text(std::string_view what, int err);

/**
 * Starts @p body in a thread that takes no signals: they belong to the
 * process's main thread (prefork's child waits in accept() for the one that
 * tells it to stop). The caller's signal mask is as it was on return.
 */
std::thread start_background_thread(std::function<void()> body);

/**
 * 64-bit FNV-1a. Stable across builds, runs and processes, which is what the
 * index file names and the on-disk slot table need; not a keyed hash.
 */
constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline std::uint64_t fnv1a(const void *data, std::size_t size, std::uint64_t h = kFnvOffset) noexcept
{
    const auto *p = static_cast<const unsigned char *>(data);
    for (std::size_t i = 0; i < size; ++i) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}
inline std::uint64_t fnv1a(std::string_view text, std::uint64_t h = kFnvOffset) noexcept
{
    return fnv1a(text.data(), text.size(), h);
}

} // namespace auth_proxy
