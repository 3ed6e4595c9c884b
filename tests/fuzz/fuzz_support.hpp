/**
 * @file fuzz_support.hpp
 * What every fuzz target shares: a property check that aborts (so libFuzzer
 * keeps the input as a crash), a reference base64 encoder, and hex dumps.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

/** Prints the broken property and aborts: libFuzzer saves the input as a crash. */
[[noreturn]] inline void property_failed(const char *file, int line, const char *condition, const std::string &detail)
{
    std::fprintf(stderr, "\n==== PROPERTY FAILED at %s:%d: %s\n", file, line, condition);
    if (!detail.empty()) {
        std::fprintf(stderr, "==== %s\n", detail.c_str());
    }
    std::fflush(stderr);
    std::abort();
}

/** Lowercase hex, for failure messages about binary values. */
inline std::string hex(std::string_view bytes)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        out += digits[static_cast<unsigned char>(c) >> 4];
        out += digits[static_cast<unsigned char>(c) & 15];
    }
    return out;
}

/** RFC 4648 base64 with padding: the canonical encoding of @p plain. */
inline std::string base64(std::string_view plain)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((plain.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < plain.size(); i += 3) {
        const std::size_t n = plain.size() - i < 3 ? plain.size() - i : 3;
        std::uint32_t v = 0;
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

inline std::string_view as_view(const std::uint8_t *data, std::size_t size)
{
    return std::string_view(reinterpret_cast<const char *>(data), size);
}

} // namespace fuzz

/** A property of the code under test: on failure, says which and aborts. */
#define FUZZ_CHECK(condition, detail)                                                                      \
    do {                                                                                                   \
        if (!(condition)) {                                                                                \
            ::fuzz::property_failed(__FILE__, __LINE__, #condition, (detail));                             \
        }                                                                                                  \
    } while (0)
