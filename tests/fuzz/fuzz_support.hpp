/**
 * @file fuzz_support.hpp
 * What every fuzz target shares: a property check that aborts (so libFuzzer
 * keeps the input as a crash), the reference base64 encoder, and hex dumps.
 */
#pragma once

#include "../unit/test_support.hpp"

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

/** RFC 4648 base64 with padding (the unit tests' reference encoder). */
using test_support::base64;

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
