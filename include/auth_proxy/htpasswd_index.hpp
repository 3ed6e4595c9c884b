/**
 * @file htpasswd_index.hpp
 * An htpasswd file parsed once into an immutable in-memory index.
 */
#pragma once

#include "auth_proxy/password_hash.hpp"

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

/**
 * User name -> stored hash, built from the text of an htpasswd file.
 *
 * The file's bytes are kept in one buffer and terminated in place, so a
 * lookup returns pointers into it and allocates nothing. Lines follow
 * mod_authn_file: '#' comments and blank lines are skipped, CR/LF endings
 * and surrounding white space are ignored, the hash ends at the next ':',
 * and of duplicate users the first one wins. Immutable once built, so any
 * number of threads may read it.
 */
class HtpasswdIndex {
public:
    struct Entry {
        const char *user;          ///< NUL-terminated, points into the index
        const char *hash;          ///< NUL-terminated stored hash
        std::uint32_t user_length;
        HashFormat format;
    };

    /** Parses @p content; lines worth a log entry go to @p diagnostics. */
    explicit HtpasswdIndex(std::string content, std::vector<Diagnostic> *diagnostics = nullptr);

    // Entries point into data_: the index never moves once built.
    HtpasswdIndex(const HtpasswdIndex &) = delete;
    HtpasswdIndex &operator=(const HtpasswdIndex &) = delete;

    /** The entry for @p user, or nullptr. O(1) expected. */
    const Entry *find(std::string_view user) const noexcept;

    /** Distinct users. */
    std::size_t size() const noexcept { return distinct_; }

    /** Bytes held by the index, including the file's text. */
    std::size_t memory_bytes() const noexcept;

private:
    void build_table();

    std::string data_;
    std::vector<Entry> entries_;       ///< in file order, duplicates included
    std::size_t distinct_ = 0;
    std::vector<std::uint32_t> slots_; ///< open addressing: entry index + 1, 0 = empty
};

} // namespace auth_proxy
