/**
 * @file index_probe.hpp
 * The slot table's hashing and its one probe walk: shared by the code that
 * lays an index out, the code that validates one, and lookups. (Private to
 * the store: the table's shape is part of the index file format.)
 */
#pragma once

#include "auth_proxy/posix.hpp"
#include "auth_proxy/store/index_layout.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace auth_proxy::index_probe {

constexpr std::size_t kEntryWords = 3; ///< user, user length, hash
constexpr std::size_t kSlotWords = 2;  ///< tag (high half of the user's hash), entry index + 1 (0: empty)

/** FNV-1a with a final mix, so that the low bits (the slot) depend on every byte. */
inline std::uint64_t hash_user(std::string_view user) noexcept
{
    std::uint64_t h = fnv1a(user);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/**
 * The slot's tag: the half of the user's hash the slot index does not use.
 * A probe compares user names only when the tags agree, so walking past
 * other users' slots never touches their text.
 */
constexpr std::uint32_t tag_of(std::uint64_t hash) noexcept { return static_cast<std::uint32_t>(hash >> 32); }

/**
 * The probe walk (linear probing from the user's hash). Calls
 * @p visit(slot, entry index) for every occupied slot whose tag matches,
 * until it returns true; stops at an empty slot, at a slot that names no
 * entry below @p entry_count, and after one lap. @return the slot where
 * the walk stopped, or @p slot_count if it ran out.
 */
template <typename Visit>
std::size_t walk(const std::uint32_t *slots, std::size_t slot_count, std::size_t entry_count, std::uint64_t hash,
                 Visit visit) noexcept
{
    const std::size_t mask = slot_count - 1;
    std::size_t slot = hash & mask;
    for (std::size_t n = 0; n < slot_count; ++n, slot = (slot + 1) & mask) {
        const std::uint32_t entry = slots[slot * kSlotWords + 1];
        if (entry == 0 || entry > entry_count) {
            return slot;
        }
        if (slots[slot * kSlotWords] == tag_of(hash) && visit(slot, static_cast<std::size_t>(entry - 1))) {
            return slot;
        }
    }
    return slot_count;
}

/**
 * True if entry @p entry of @p s names @p user. The bounds are checked here
 * rather than trusted: a lookup never reads outside the buffer, whatever
 * the bytes of a mapped file say.
 */
inline bool names_user(const IndexSections &s, std::size_t entry, std::string_view user) noexcept
{
    const std::uint32_t *e = s.entries + entry * kEntryWords;
    return e[1] == user.size() && e[0] < s.text_bytes && user.size() < s.text_bytes - e[0] &&
           std::memcmp(s.text + e[0], user.data(), user.size()) == 0;
}

} // namespace auth_proxy::index_probe
