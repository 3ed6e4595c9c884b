/**
 * @file htpasswd_index.hpp
 * An htpasswd file parsed once into an immutable index that lives in one
 * contiguous, position-independent buffer: on the heap, or mapped read-only
 * from an index file that every server process shares.
 */
#pragma once

#include "auth_proxy/file_signature.hpp"
#include "auth_proxy/page_allocator.hpp"
#include "auth_proxy/store/htpasswd_parser.hpp"
#include "auth_proxy/store/index_layout.hpp"
#include "auth_proxy/verify/password_hash.hpp"

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace auth_proxy {

/**
 * User name -> stored hash: one index buffer (see index_layout.hpp), owned
 * on the heap or mapped from an index file, and the lookup over it.
 *
 * Built from an htpasswd file's text (htpasswd_parser.hpp says which lines
 * count; of duplicate users the first wins), or taken as it is from an
 * index file: serialized() is the content of one, and map() uses one
 * without parsing. Immutable once built, so any number of threads may read
 * it; lookups allocate nothing and never read outside the buffer.
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
     * Parses @p content into a heap buffer; entries worth a log entry (a
     * duplicate, an unusable hash) go to @p diagnostics, malformed lines are
     * counted into @p malformed (each if not null). @p source is recorded
     * in the header for map() users.
     */
    explicit HtpasswdIndex(std::string_view content, std::vector<Diagnostic> *diagnostics = nullptr,
                           const FileSignature &source = FileSignature{}, MalformedLines *malformed = nullptr);

    /** The index of what HtpasswdParser read, as the constructor above. */
    HtpasswdIndex(const ParsedUsers &parsed, std::vector<Diagnostic> *diagnostics, const FileSignature &source);
    ~HtpasswdIndex();

    // Entries point into the buffer: the index never moves once built.
    HtpasswdIndex(const HtpasswdIndex &) = delete;
    HtpasswdIndex &operator=(const HtpasswdIndex &) = delete;

    using Checks = IndexChecks;

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
    std::size_t size() const noexcept { return s_.distinct; }

    /**
     * Of those, the ones whose entry is not a usable hash (they can never
     * log in), as counted when this process laid the index out; 0 for an
     * index mapped from a file, whose writer counted them.
     */
    std::size_t unusable_users() const noexcept { return unusable_; }

    /** Bytes held by the index, including the users' text (mapped or not). */
    std::size_t memory_bytes() const noexcept;

    /**
     * The hash format and cost most of the file's users share (APR1-MD5, the
     * htpasswd default, if none is usable): an unknown user is verified
     * against a dummy hash of this kind, so that it costs what a wrong
     * password for a real user costs.
     */
    HashFormat typical_format() const noexcept { return s_.typical_format; }
    std::uint32_t typical_cost() const noexcept { return s_.typical_cost; }

    /** The signature of the file the index was built from, as recorded in its header. */
    const FileSignature &source() const noexcept { return s_.source; }

    /** The whole buffer: what an index file holds. */
    std::string_view serialized() const noexcept { return std::string_view(base_, bytes_); }

    /** True if the buffer is a mapped index file rather than private heap memory. */
    bool is_mapped() const noexcept { return mapping_ != nullptr; }

private:
    HtpasswdIndex() = default;
    /** Lays out @p parsed into heap_ and attaches it. */
    void build(const ParsedUsers &parsed, std::vector<Diagnostic> *diagnostics, const FileSignature &source);
    /** Checks base_/bytes_ and takes the sections; false + @p error if invalid. */
    bool attach(std::string &error, Checks checks) noexcept;

    std::size_t unusable_ = 0; ///< see unusable_users()
    PageString heap_;         ///< the buffer, unless mapped
    void *mapping_ = nullptr; ///< the buffer, if mapped (unmapped with the index)
    const char *base_ = nullptr;
    std::size_t bytes_ = 0;
    IndexSections s_;         ///< slots null: answers nothing
};

/** For test failure messages: the user and format, or "not found". */
std::ostream &operator<<(std::ostream &out, const HtpasswdIndex::Found &found);

} // namespace auth_proxy
