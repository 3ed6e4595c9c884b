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

/** A DER element (tag, definite length, contents), built by hand for token tests. */
inline std::string der(unsigned char tag, const std::string &content)
{
    std::string out(1, static_cast<char>(tag));
    std::string length;
    for (std::size_t n = content.size(); n > 0; n >>= 8) {
        length.insert(length.begin(), static_cast<char>(n & 0xff));
    }
    if (content.size() < 0x80) {
        out += static_cast<char>(content.size());
    }
    else {
        out += static_cast<char>(0x80 | length.size());
        out += length;
    }
    return out + content;
}

/** A Kerberos AP-REQ GSS token (RFC 4121 4.1) for HTTP/@p host@@p realm whose ticket and
 *  authenticator are @p cipher_size made-up bytes: it decodes, and no key decrypts it. */
inline std::string made_up_kerberos_token(const std::string &host, const std::string &realm = "PROXY.TEST",
                                          std::size_t cipher_size = 64)
{
    const auto integer = [](int v) { return der(0x02, std::string(1, static_cast<char>(v))); };
    const auto encrypted = [&](std::string_view fill) {
        return der(0x30, der(0xa0, integer(18)) + der(0xa1, integer(1)) +
                             der(0xa2, der(0x04, std::string(cipher_size, fill[0]))));
    };
    const std::string sname = der(0x30, der(0xa0, integer(2)) +
                                            der(0xa1, der(0x30, der(0x1b, "HTTP") + der(0x1b, host))));
    const std::string ticket = der(0x61, der(0x30, der(0xa0, integer(5)) + der(0xa1, der(0x1b, realm)) +
                                                       der(0xa2, sname) + der(0xa3, encrypted("t"))));
    const std::string ap_req =
        der(0x6e, der(0x30, der(0xa0, integer(5)) + der(0xa1, integer(14)) +
                                der(0xa2, der(0x03, std::string(5, '\0'))) + der(0xa3, ticket) +
                                der(0xa4, encrypted("a"))));
    return der(0x60, der(0x06, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02") + std::string("\x01\x00", 2) + ap_req);
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
