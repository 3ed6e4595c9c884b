/**
 * @file htpasswd_index.hpp
 * An htpasswd file parsed once into an immutable index that lives in one
 * contiguous, position-independent buffer: on the heap, or mapped read-only
 * from an index file that every server process shares.
 */
#pragma once

#include "auth_proxy/file_signature.hpp"
#include "auth_proxy/page_allocator.hpp"
#include "auth_proxy/password_hash.hpp"

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
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

/**
 * User name -> stored hash, built from the text of an htpasswd file.
 *
 * The buffer holds a header (magic, version, the source file's signature,
 * section offsets), the file's text terminated in place, an entry array of
 * offsets into the text and an open-addressing slot table. Nothing in it is
 * a pointer, so the same bytes work at any address: serialized() is the
 * content of an index file, and map() uses such a file without parsing.
 * Lines follow mod_authn_file: '#' comments and blank lines are skipped,
 * CR/LF endings and surrounding white space are ignored, the hash ends at
 * the next ':', and of duplicate users the first one wins; a line with a NUL
 * byte is ignored with a warning. Immutable once
 * built, so any number of threads may read it; lookups allocate nothing.
 */
class HtpasswdIndex {
public:
    /** One user, as find() reports it. Pointers stay valid as long as the index. */
    struct Entry {
        const char *user;          ///< NUL-terminated, points into the index
        const char *hash;          ///< NUL-terminated stored hash
        std::uint32_t user_length;
        HashFormat format;
    };

    /** The result of find(): an Entry, or nothing (compares equal to nullptr). */
    class Found {
    public:
        Found() noexcept = default;
        explicit Found(const Entry &entry) noexcept : entry_(entry), found_(true) {}
        const Entry *operator->() const noexcept { return &entry_; }
        const Entry &operator*() const noexcept { return entry_; }
        explicit operator bool() const noexcept { return found_; }
        friend bool operator==(const Found &f, std::nullptr_t) noexcept { return !f.found_; }
        friend bool operator!=(const Found &f, std::nullptr_t) noexcept { return f.found_; }

    private:
        Entry entry_{nullptr, nullptr, 0, HashFormat::unknown};
        bool found_ = false;
    };

    /**
     * Parses @p content into a heap buffer; lines worth a log entry go to
     * @p diagnostics. @p source is recorded in the header for map() users.
     */
    explicit HtpasswdIndex(std::string_view content, std::vector<Diagnostic> *diagnostics = nullptr,
                           const FileSignature &source = FileSignature{});
    ~HtpasswdIndex();

    // Entries point into the buffer: the index never moves once built.
    HtpasswdIndex(const HtpasswdIndex &) = delete;
    HtpasswdIndex &operator=(const HtpasswdIndex &) = delete;

    /** How much of a mapped or copied index is checked before use. */
    enum class Checks {
        header, ///< header and section bounds: O(1); for files only a trusted writer can have made
        full,   ///< also every entry and the slot table against the user names: O(users)
    };

    /**
     * Uses the index file open on @p fd, mapped read-only and shared.
     * Returns null and sets @p error for anything that is not a consistent
     * index. Whatever the checks, a lookup never reads outside the mapping
     * and never loops: find() bounds-checks what it reads.
     */
    static std::shared_ptr<const HtpasswdIndex> map(int fd, std::string &error, Checks checks = Checks::full);

    /**
     * Reads only the header of the index file open on @p fd: true and the
     * source signature if it looks like an index of this version. Lets a
     * stale file be passed over without the O(users) checks of map().
     */
    static bool peek_source(int fd, FileSignature &source) noexcept;

    /** The same checks as map(), for bytes already in memory (kept in a heap copy). */
    static std::shared_ptr<const HtpasswdIndex> from_serialized(std::string_view bytes, std::string &error);

    /** The entry for @p user, or nothing. O(1) expected. */
    Found find(std::string_view user) const noexcept;

    /** Distinct users. */
    std::size_t size() const noexcept { return distinct_; }

    /** Bytes held by the index, including the file's text (mapped or not). */
    std::size_t memory_bytes() const noexcept;

    /**
     * The hash format and cost most of the file's users share (APR1-MD5, the
     * htpasswd default, if none is usable): an unknown user is verified
     * against a dummy hash of this kind, so that it costs what a wrong
     * password for a real user costs.
     */
    HashFormat typical_format() const noexcept { return typical_format_; }
    std::uint32_t typical_cost() const noexcept { return typical_cost_; }

    /** The signature of the file the index was built from, as recorded in its header. */
    const FileSignature &source() const noexcept { return source_; }

    /** The whole buffer: what an index file holds. */
    std::string_view serialized() const noexcept { return std::string_view(base_, bytes_); }

    /** True if the buffer is a mapped index file rather than private heap memory. */
    bool is_mapped() const noexcept { return mapping_ != nullptr; }

private:
    HtpasswdIndex() = default;
    /** Checks base_/bytes_ and sets the section pointers; false + @p error if invalid. */
    bool attach(std::string &error, Checks checks) noexcept;
    /** Points the section members at the buffer described by @p header (a Header). */
    void adopt(const void *header) noexcept;
    /** The O(users) part of Checks::full. */
    bool entries_consistent() const noexcept;
    /** True if entry @p entry names @p user (bounds-checked). */
    bool user_at(std::size_t entry, std::string_view user) const noexcept;

    PageString heap_;                        ///< the buffer, unless mapped
    void *mapping_ = nullptr;                ///< the buffer, if mapped (unmapped with the index)
    const char *base_ = nullptr;
    std::size_t bytes_ = 0;
    const char *text_ = nullptr;
    std::size_t text_bytes_ = 0;             ///< including the final NUL
    const std::uint32_t *entries_ = nullptr; ///< 3 words each: user, user length, hash
    std::size_t entry_count_ = 0;            ///< in file order, duplicates included
    const std::uint32_t *slots_ = nullptr;   ///< 2 words each: tag, entry index + 1 (0 = empty); null: answers nothing
    std::size_t slot_count_ = 0;             ///< a power of two, never full
    std::size_t distinct_ = 0;
    HashFormat typical_format_ = HashFormat::apr1_md5;
    std::uint32_t typical_cost_ = 0;
    FileSignature source_;
};

/** For test failure messages: the user and format, or "not found". */
std::ostream &operator<<(std::ostream &out, const HtpasswdIndex::Found &found);

} // namespace auth_proxy
