/**
 * @file htpasswd_parser.hpp
 * Reading an htpasswd file's lines, as mod_authn_file reads them, in a
 * stream: what a parse holds grows with the users it keeps, never with the
 * bytes it skips.
 */
#pragma once

#include "auth_proxy/page_allocator.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace auth_proxy {

/**
 * The longest line read, in bytes, without its '\n'. htpasswd refuses user
 * names over 255 bytes and its longest hash (SHA-512 crypt with a rounds=
 * prefix) is about 125, so no line it writes is near 400 bytes; 4 KiB leaves
 * room for hand-written comments and extra fields. mod_authn_file stops
 * reading a file at a line longer than its 8 KiB buffer, and so does this
 * parser at a line over this cap: the users after it are refused, never
 * admitted where stock httpd would refuse them.
 */
constexpr std::size_t kMaxLineBytes = 4096;

/** Something an operator should hear about a line of the file. */
struct Diagnostic {
    std::size_t line;    ///< 1-based line number
    bool warning;        ///< false: informational (e.g. a duplicate user)
    std::string message;
};

/** One user line: where its user and hash are in the parse's text. */
struct HtpasswdLine {
    std::uint32_t user;
    std::uint32_t user_length;
    std::uint32_t hash;
    std::uint32_t hash_length;
    std::size_t line; ///< 1-based, for diagnostics
    bool htdigest = false; ///< user:realm:32-hex, as htdigest writes (the realm taken for the hash)
};

/** Lines left out of a file as malformed: counted, for one summary per load. */
struct MalformedLines {
    std::size_t nul = 0;             ///< lines with a NUL byte
    std::size_t no_colon = 0;        ///< lines without ':' between user and hash
    std::size_t empty_user = 0;      ///< lines with an empty user name
    std::size_t first_nul = 0;       ///< line number of the first of each kind (0: none)
    std::size_t first_no_colon = 0;
    std::size_t first_empty_user = 0;
    std::size_t too_long_at = 0;     ///< the line over kMaxLineBytes where reading stopped (0: none)

    std::size_t total() const noexcept { return nul + no_colon + empty_user + (too_long_at != 0 ? 1 : 0); }
    /** "2 without ':' (first: line 4), ...", or empty if none. */
    std::string describe(std::size_t max_line) const;
};

/**
 * The users of a file: each kept line's user and hash, NUL-terminated, one
 * after the other in @p text ("user\0hash\0..."), and where they are.
 */
struct ParsedUsers {
    PageString text;
    PageVector<HtpasswdLine> lines; ///< file order, duplicates included
    MalformedLines malformed;
};

/**
 * Parses a file fed in chunks of any size. '#' comments and blank lines are
 * skipped, CR/LF endings and surrounding white space are ignored, the hash
 * ends at the next ':' (further fields are ignored, as mod_authn_file
 * does). A line without ':', with an empty user or with a NUL byte (which
 * would end a name early wherever it is read as a C string) is left out and
 * counted. A line longer than the cap ends the parse: feed() returns false
 * and the rest of the file is not read.
 *
 * Holds at most one partial line besides the users kept.
 */
class HtpasswdParser {
public:
    explicit HtpasswdParser(std::size_t max_line = kMaxLineBytes);

    /**
     * Keeps only the lines of @p user and stops at the first of them, the
     * one that counts (of duplicates the first wins, as mod_authn_file reads
     * them): what a lookup of one user in the file itself needs. Call
     * before the first feed().
     */
    void keep_only(std::string_view user);

    /** The next bytes of the file. False once the parser wants no more. */
    bool feed(std::string_view bytes);

    /** Ends the input (a last line needs no newline) and hands over the result. */
    ParsedUsers finish();

private:
    void take_line(std::string_view raw);

    const std::size_t max_line_;
    std::string partial_; ///< the current line so far, at most max_line_ bytes
    std::size_t line_no_ = 0;
    bool stopped_ = false;
    bool filtering_ = false;
    std::string only_; ///< keep_only()'s user
    ParsedUsers out_;
};

/**
 * The whole of @p content through HtpasswdParser. Throws std::length_error
 * for users past 4 GiB of text (offsets are 32-bit).
 */
ParsedUsers parse_htpasswd(std::string_view content, std::size_t max_line = kMaxLineBytes);

} // namespace auth_proxy
