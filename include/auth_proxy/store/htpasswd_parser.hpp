/**
 * @file htpasswd_parser.hpp
 * Reading an htpasswd file's lines, as mod_authn_file reads them.
 */
#pragma once

#include "auth_proxy/page_allocator.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace auth_proxy {

/** Something an operator should hear about a line of the file. */
struct Diagnostic {
    std::size_t line;    ///< 1-based line number
    bool warning;        ///< false: informational (e.g. a duplicate user)
    std::string message;
};

/** One user line: where its user and hash are in the file's text. */
struct HtpasswdLine {
    std::uint32_t user;
    std::uint32_t user_length;
    std::uint32_t hash;
    std::uint32_t hash_length;
    std::size_t line; ///< 1-based, for diagnostics
};

/**
 * The user lines of @p content, in file order, duplicates included. '#'
 * comments and blank lines are skipped, CR/LF endings and surrounding white
 * space are ignored, the hash ends at the next ':' (further fields are
 * ignored, as mod_authn_file does). A line without ':', with an empty user
 * or with a NUL byte (which would end a name early wherever it is read as a
 * C string) is left out with a warning in @p diagnostics (if not null).
 * Throws std::length_error for text past 4 GiB (offsets are 32-bit).
 */
PageVector<HtpasswdLine> parse_htpasswd(std::string_view content, std::vector<Diagnostic> *diagnostics);

} // namespace auth_proxy
