// Fuzz target: HtpasswdIndex::from_serialized() on arbitrary bytes, the
// check every server process runs (through map()) on an index file.
//
// It must refuse, or give an index on which lookups stay inside the buffer
// and end: every entry's user is found at its first entry, and names taken
// from the input are either found as themselves or not at all. The layout
// is read here independently of the reader, so an accepted index whose
// sections or entries point outside the buffer fails even where ASan would
// not notice (a large buffer is a page mapping, not a heap block).
//
// The header carries an unkeyed FNV check, which random mutations almost
// never keep right; anyone who forges an index file can compute it too. So
// the custom mutator recomputes it after most mutations, and half of them
// are structure-aware: one word of a section, or a header field, set to a
// value near a bound. Seeds are valid indexes (corpus/fuzz_index_validation,
// written by make_index_seeds), and now and then the mutator starts again
// from an index built by the running code, so mutations start past the
// header checks even when the seeds are of an older format version.

#include "auth_proxy/posix.hpp"
#include "auth_proxy/store/htpasswd_index.hpp"

#include "fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using auth_proxy::classify_hash;
using auth_proxy::HtpasswdIndex;

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t *data, std::size_t size, std::size_t max_size);

namespace {

/**
 * The header fields of an index file (mod_src/core/store/index_layout.cpp)
 * that versions 2 and 3 keep at these offsets. Whatever follows them, the
 * header ends with its 8-byte check, over all the bytes before it, and
 * header_bytes says where that is.
 */
struct IndexHeader {
    char magic[8];
    std::uint32_t version;
    std::uint32_t header_bytes;
    std::uint64_t byte_order;
    std::uint64_t total_bytes;
    std::uint64_t source_device;
    std::uint64_t source_inode;
    std::int64_t source_size;
    std::int64_t source_mtime_ns;
    std::int64_t source_ctime_ns;
    std::uint64_t text_offset;
    std::uint64_t text_bytes;
    std::uint64_t entries_offset;
    std::uint64_t entry_count;
    std::uint64_t slots_offset;
    std::uint64_t slot_count;
    std::uint64_t distinct;
};
static_assert(sizeof(IndexHeader) == 128, "the fields every index version so far shares");

constexpr std::size_t kEntryWords = 3; // user, user length, hash
constexpr std::size_t kSlotWords = 2;  // tag, entry index + 1

/** Where the header's check lies (its last 8 bytes), or 0 if the header cannot say. */
std::size_t check_offset(const std::uint8_t *data, std::size_t size)
{
    if (size < sizeof(IndexHeader) + 8) {
        return 0;
    }
    std::uint32_t header_bytes;
    std::memcpy(&header_bytes, data + offsetof(IndexHeader, header_bytes), sizeof header_bytes);
    if (header_bytes < sizeof(IndexHeader) + 8 || header_bytes > size || header_bytes % 8 != 0) {
        return 0;
    }
    return header_bytes - 8;
}

/** FNV-1a over every header byte before the check, as the reader computes it. */
void fix_check(std::uint8_t *data, std::size_t at)
{
    const std::uint64_t c = auth_proxy::fnv1a(data, at);
    std::memcpy(data + at, &c, sizeof c);
}

std::uint32_t word_at(const char *p)
{
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/** The sections of an index, read with bounds checks of our own. */
struct Layout {
    IndexHeader h;
    std::string_view text;    // including the final NUL
    const char *entries;
    const char *slots;

    std::uint32_t entry_word(std::uint64_t entry, std::size_t word) const
    {
        return word_at(entries + (entry * kEntryWords + word) * sizeof(std::uint32_t));
    }
};

/** Empty if @p bytes hold consistent sections, else what is out of range. */
std::string read_layout(std::string_view bytes, Layout &layout)
{
    const std::size_t check_at = check_offset(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size());
    if (check_at == 0) {
        return "header size";
    }
    IndexHeader &h = layout.h;
    std::memcpy(&h, bytes.data(), sizeof h);
    const std::uint64_t size = bytes.size();
    if (h.text_offset < check_at + 8 || h.text_offset > size || h.text_bytes == 0 ||
        h.text_bytes > size - h.text_offset) {
        return "text section";
    }
    if (h.entries_offset < h.text_offset + h.text_bytes || h.entries_offset > size ||
        h.entry_count > (size - h.entries_offset) / (kEntryWords * 4)) {
        return "entry section";
    }
    if (h.slots_offset < h.entries_offset + h.entry_count * kEntryWords * 4 || h.slots_offset > size ||
        h.slot_count == 0 || h.slot_count > (size - h.slots_offset) / (kSlotWords * 4)) {
        return "slot section";
    }
    layout.text = bytes.substr(h.text_offset, h.text_bytes);
    layout.entries = bytes.data() + h.entries_offset;
    layout.slots = bytes.data() + h.slots_offset;
    if (layout.text.back() != '\0') {
        return "text without a final NUL";
    }
    for (std::uint64_t i = 0; i < h.entry_count; ++i) {
        const std::uint64_t user = layout.entry_word(i, 0), length = layout.entry_word(i, 1);
        const std::uint64_t hash = layout.entry_word(i, 2);
        if (user + length >= layout.text.size() || hash >= layout.text.size()) {
            return "entry " + std::to_string(i) + " points outside the text";
        }
        if (layout.text[user + length] != '\0') {
            return "user of entry " + std::to_string(i) + " is not NUL-terminated";
        }
    }
    return std::string();
}

std::string_view user_of(const Layout &layout, std::uint64_t entry)
{
    return layout.text.substr(layout.entry_word(entry, 0), layout.entry_word(entry, 1));
}

/** Names to look up that are not (necessarily) users: slices of the input. */
std::vector<std::string_view> derived_names(std::string_view bytes)
{
    std::vector<std::string_view> names = {"", "alice", std::string_view("\0", 1)};
    for (std::size_t k = 0; k < 8 && !bytes.empty(); ++k) {
        const std::size_t at = (k * 2654435761u + bytes.size()) % bytes.size();
        names.push_back(bytes.substr(at, static_cast<unsigned char>(bytes[at]) % 24));
    }
    return names;
}

void check_accepted(const HtpasswdIndex &index, std::string_view input)
{
    FUZZ_CHECK(index.serialized() == input, "the index is not the bytes it was read from");
    // The index keeps a copy: its pointers are compared with that copy.
    const std::string_view bytes = index.serialized();
    Layout layout;
    const std::string broken = read_layout(bytes, layout);
    FUZZ_CHECK(broken.empty(), "accepted an index with a bad " + broken);

    const char *begin = bytes.data();
    const char *end = bytes.data() + bytes.size();
    // First entry of each user, as a fresh parse would index them.
    std::map<std::string_view, std::uint64_t> first;
    for (std::uint64_t i = 0; i < layout.h.entry_count; ++i) {
        first.emplace(user_of(layout, i), i);
    }
    for (std::uint64_t i = 0; i < layout.h.entry_count; ++i) {
        const std::string_view name = user_of(layout, i);
        const HtpasswdIndex::Found found = index.find(name);
        FUZZ_CHECK(found != nullptr, "the user of entry " + std::to_string(i) + " is not found");
        const std::uint64_t f = first.at(name);
        FUZZ_CHECK(found->user == layout.text.data() + layout.entry_word(f, 0) && found->user_length == name.size(),
                   "entry " + std::to_string(i) + " is found, but not at the first entry of its user");
        FUZZ_CHECK(found->hash == layout.text.data() + layout.entry_word(f, 2), "hash of another entry");
    }
    for (const std::string_view name : derived_names(input)) {
        const HtpasswdIndex::Found found = index.find(name);
        FUZZ_CHECK((found != nullptr) == (first.count(name) != 0),
                   "find(" + fuzz::hex(name) + ") disagrees with the entries");
        if (found != nullptr) {
            FUZZ_CHECK(found->user >= begin && found->user + found->user_length < end, "user outside the index");
            FUZZ_CHECK(std::string_view(found->user, found->user_length) == name, "found another user");
            FUZZ_CHECK(found->hash >= begin && found->hash < end, "hash outside the index");
            FUZZ_CHECK(found->format == classify_hash(found->hash), "format is not the hash's own");
        }
    }
    // A consistent index counts what it holds: size() is logged as "N users" and tells an emptied file.
    FUZZ_CHECK(index.size() == first.size(), "size() says " + std::to_string(index.size()) + " users, the entries hold " +
                                                 std::to_string(first.size()));
}

/** Sets one 32-bit word (or 64-bit header field) near a bound: the edits that probe a validator. */
void mutate_structure(std::uint8_t *data, std::size_t size, std::minstd_rand &rng)
{
    IndexHeader h;
    std::memcpy(&h, data, sizeof h);
    const std::uint64_t interesting[] = {0,
                                         1,
                                         h.entry_count,
                                         h.entry_count + 1,
                                         h.text_bytes - 1,
                                         h.text_bytes,
                                         h.slot_count,
                                         h.distinct + 1,
                                         h.distinct - 1,
                                         0xffffffffu,
                                         0x80000000u,
                                         static_cast<std::uint64_t>(rng())};
    const std::uint64_t value = interesting[rng() % (sizeof interesting / sizeof interesting[0])];
    const std::size_t choice = rng() % 8;
    if (choice == 0) {
        // A header field after byte_order (the check is fixed up afterwards).
        const std::size_t field = offsetof(IndexHeader, total_bytes) + 8 * (rng() % 14);
        std::memcpy(data + field, &value, sizeof value);
        return;
    }
    if (choice == 1 && h.text_offset < size) {
        // A byte of the text: a terminator, a separator, or anything.
        const std::size_t at = h.text_offset + rng() % (size - h.text_offset);
        const std::uint8_t bytes[] = {0, ':', '\n', static_cast<std::uint8_t>(rng())};
        data[at] = bytes[rng() % 4];
        return;
    }
    // A word of the entries or the slots (or whatever lies there if the header is damaged).
    const std::uint64_t from = choice < 5 ? h.entries_offset : h.slots_offset;
    if (from >= size || size - from < 4) {
        return;
    }
    const std::size_t at = from + 4 * (rng() % ((size - from) / 4));
    const auto word = static_cast<std::uint32_t>(value);
    std::memcpy(data + at, &word, sizeof word);
    if (choice == 7) {
        // A used slot also needs the user count to agree.
        h.distinct += word != 0 ? 1 : 0;
        std::memcpy(data + offsetof(IndexHeader, distinct), &h.distinct, sizeof h.distinct);
    }
}

/** The serialized index of a small htpasswd file: a few users, a duplicate, and a line made of the input. */
std::string build_index(const std::uint8_t *data, std::size_t size, std::minstd_rand &rng)
{
    std::string text;
    const std::size_t users = rng() % 24;
    for (std::size_t i = 0; i < users; ++i) {
        text += "u" + std::to_string(rng() % 32) + ":{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\n";
    }
    text.append(reinterpret_cast<const char *>(data), std::min<std::size_t>(size, 64));
    return std::string(HtpasswdIndex(text).serialized());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string_view bytes = fuzz::as_view(data, size);
    std::string error;
    const std::shared_ptr<const HtpasswdIndex> index = HtpasswdIndex::from_serialized(bytes, error);
    if (index == nullptr) {
        FUZZ_CHECK(!error.empty(), "refused without a reason");
        return 0;
    }
    check_accepted(*index, bytes);
    // Accepting is a property of the bytes alone.
    std::string again;
    FUZZ_CHECK(HtpasswdIndex::from_serialized(index->serialized(), again) != nullptr, "refused a copy: " + again);
    return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t *data, std::size_t size, std::size_t max_size,
                                               unsigned int seed)
{
    std::minstd_rand rng(seed);
    if (rng() % 16 == 0) {
        // Start again from a valid index of the running format version, so
        // that seeds of an older version (or none) still lead somewhere.
        const std::string built = build_index(data, size, rng);
        if (built.size() <= max_size) {
            std::memcpy(data, built.data(), built.size());
            size = built.size();
        }
    }
    if (size >= sizeof(IndexHeader) + 8 && rng() % 2 == 0) {
        mutate_structure(data, size, rng);
    }
    else {
        size = LLVMFuzzerMutate(data, size, max_size);
    }
    // As a forger would; one mutation in 16 keeps whatever check it made.
    const std::size_t check_at = check_offset(data, size);
    if (check_at != 0 && rng() % 16 != 0) {
        fix_check(data, check_at);
    }
    return size;
}
