/**
 * @file index_layout.hpp
 * The index buffer's layout: how an htpasswd file's text and its slot table
 * are laid out in one position-independent buffer (the content of an index
 * file), and how such a buffer is checked before use.
 *
 * The buffer holds a header (magic, version, the source file's signature,
 * section offsets, the typical hash kind, a check value), the users' text
 * (each kept line's user and hash, NUL-terminated, as HtpasswdParser lays
 * it out: comments and skipped lines are not in it), an entry array of
 * offsets into the text, and an open-addressing slot table. Nothing in it
 * is a pointer, so the same bytes work at any address.
 */
#pragma once

#include "auth_proxy/file_signature.hpp"
#include "auth_proxy/page_allocator.hpp"
#include "auth_proxy/store/htpasswd_parser.hpp"
#include "auth_proxy/verify/password_hash.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace auth_proxy {

/** Where the sections of a checked buffer are, and what its header says. */
struct IndexSections {
    const char *text = nullptr;
    std::size_t text_bytes = 0;              ///< including the final NUL
    const std::uint32_t *entries = nullptr;  ///< 3 words each: user, user length, hash
    std::size_t entry_count = 0;             ///< in file order, duplicates included
    const std::uint32_t *slots = nullptr;    ///< 2 words each: tag, entry index + 1 (0 = empty)
    std::size_t slot_count = 0;              ///< a power of two, never full
    std::size_t distinct = 0;
    HashFormat typical_format = HashFormat::apr1_md5;
    std::uint32_t typical_cost = 0;
    FileSignature source;
};

/** How much of a buffer is checked before use. */
enum class IndexChecks {
    header, ///< header and section bounds: O(1); for files only a trusted writer can have made
    full,   ///< also every entry and the slot table against the user names: O(users)
};

/** What a layout found among the distinct users, besides what the header keeps. */
struct LayoutCounts {
    std::size_t unusable = 0;    ///< users whose entry is not a usable hash: they can never log in
    std::size_t digest_like = 0; ///< of those, lines of the form user:realm:32-hex, as htdigest writes
};

/**
 * Lays out the index of a parse's @p text, whose user lines are @p lines
 * (see ParsedUsers), as the file version @p source. Of duplicate users the first wins; duplicates and
 * hashes that are not usable (unknown, over the cost cap) are noted in
 * @p diagnostics (if not null), except that a file whose unusable entries
 * are all htdigest entries gets one note saying so. The typical (format,
 * cost) is the most common usable one, ties to the costlier.
 */
PageString lay_out_index(std::string_view text, const PageVector<HtpasswdLine> &lines,
                         const FileSignature &source, std::vector<Diagnostic> *diagnostics,
                         LayoutCounts *counts = nullptr);

/**
 * Checks @p bytes bytes at @p base as an index buffer and fills @p out;
 * false and @p error for anything that is not a consistent index.
 */
bool read_index(const char *base, std::size_t bytes, IndexChecks checks, IndexSections &out,
                std::string &error) noexcept;

/**
 * Reads only the header of the index file open on @p fd: true and the
 * source signature if it looks like an index of this version.
 */
bool peek_index_source(int fd, FileSignature &source) noexcept;

/** The smallest buffer that can hold an index header. */
std::size_t index_header_bytes() noexcept;

} // namespace auth_proxy
