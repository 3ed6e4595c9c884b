/**
 * @file test_support.hpp
 * Scratch files for the unit tests that touch the file system, and a log
 * sink that keeps what the core reports.
 */
#pragma once

#include "auth_proxy/log.hpp"
#include "auth_proxy/store/file_opener.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace test_support {

/** A private directory under /tmp, removed with everything in it. */
struct TempDir {
    std::string path;
    TempDir()
    {
        char pattern[] = "/tmp/auth_proxy_unit.XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path = pattern;
    }
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, ignored);
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    std::string file(const std::string &name) const { return path + "/" + name; }
};

/** Rewrites @p path in place (truncate and write), as an editor might. */
inline void write_file(const std::string &path, const std::string &content)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

inline std::string read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/** RFC 4648 base64 with padding: what a client puts after "Basic ". */
inline std::string base64(std::string_view plain)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((plain.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < plain.size(); i += 3) {
        const std::size_t n = plain.size() - i < 3 ? plain.size() - i : 3;
        unsigned v = 0;
        for (std::size_t j = 0; j < 3; ++j) {
            v = (v << 8) | (j < n ? static_cast<unsigned char>(plain[i + j]) : 0u);
        }
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += n > 1 ? alphabet[(v >> 6) & 63] : '=';
        out += n > 2 ? alphabet[v & 63] : '=';
    }
    return out;
}

/**
 * What httpd's ap_escape_quotes() (server/util.c) stores for an AuthName,
 * step for step: a '"' gets a '\\' before it; a '\\' that is not the last
 * character is copied together with the character after it (a pair kept as
 * it is); anything else is copied. It stops at a NUL, as the C original.
 */
inline std::string httpd_escape_quotes(std::string_view in)
{
    in = in.substr(0, in.find('\0'));
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '"') {
            out += '\\';
        }
        else if (in[i] == '\\' && i + 1 < in.size()) {
            out += in[i++];
        }
        out += in[i];
    }
    return out;
}

/** An opener that refuses every file, as the User does one it may not read. */
struct Refusing final : auth_proxy::FileOpener {
    explicit Refusing(std::string who, int error = EACCES, bool opener_failed = false)
        : FileOpener(std::move(who)), error(error), opener_failed(opener_failed) {}
    auth_proxy::OpenResult open(const std::string &path) const noexcept override
    {
        if (!refuse) {
            return auth_proxy::open_with_own_rights(path);
        }
        auth_proxy::OpenResult result;
        result.error = error;
        result.opener_failed = opener_failed;
        return result;
    }
    int error;
    bool opener_failed;
    std::atomic<bool> refuse{true};
};

/** A Logger that keeps every line, from any thread. */
struct LogCapture {
    struct Line {
        auth_proxy::LogLevel level;
        std::string text;
        auth_proxy::LogId id;
    };
    mutable std::mutex mutex;
    std::vector<Line> lines;

    auth_proxy::Logger logger()
    {
        auth_proxy::Logger log;
        log.sink = [](void *ctx, auth_proxy::LogLevel level, auth_proxy::LogId id, const std::string &message) {
            auto *self = static_cast<LogCapture *>(ctx);
            std::lock_guard<std::mutex> lock(self->mutex);
            self->lines.push_back(Line{level, message, id});
        };
        log.ctx = this;
        return log;
    }
    std::size_t size() const
    {
        std::lock_guard<std::mutex> lock(mutex);
        return lines.size();
    }
    /** Lines that contain @p piece. */
    std::size_t count(const std::string &piece) const
    {
        std::lock_guard<std::mutex> lock(mutex);
        std::size_t n = 0;
        for (const Line &line : lines) {
            n += line.text.find(piece) != std::string::npos ? 1 : 0;
        }
        return n;
    }
    /** True if a line at @p level contains every piece of @p pieces. */
    bool has(auth_proxy::LogLevel level, std::initializer_list<std::string> pieces) const
    {
        return has(level, std::nullopt, pieces);
    }
    /** has(), for lines logged with the number @p id only. */
    bool has(auth_proxy::LogLevel level, std::optional<auth_proxy::LogId> id,
             std::initializer_list<std::string> pieces) const
    {
        std::lock_guard<std::mutex> lock(mutex);
        for (const Line &line : lines) {
            if (line.level != level || (id && line.id != *id)) {
                continue;
            }
            bool all = true;
            for (const std::string &piece : pieces) {
                all = all && line.text.find(piece) != std::string::npos;
            }
            if (all) {
                return true;
            }
        }
        return false;
    }
    /** has(), waiting up to 20 s for the line: lines from a watcher arrive through its LogQueue. */
    bool eventually_has(auth_proxy::LogLevel level, std::initializer_list<std::string> pieces) const
    {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!has(level, pieces) && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return has(level, pieces);
    }
    std::string dump() const
    {
        std::lock_guard<std::mutex> lock(mutex);
        std::string out;
        for (const Line &line : lines) {
            out += "\n  " + line.text;
        }
        return out;
    }
};

} // namespace test_support
