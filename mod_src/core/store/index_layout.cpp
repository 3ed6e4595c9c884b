#include "auth_proxy/store/index_layout.hpp"

#include "index_probe.hpp"

#include "auth_proxy/posix.hpp"

#include <cstddef>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

namespace auth_proxy {

using index_probe::hash_user;
using index_probe::kEntryWords;
using index_probe::kSlotWords;
using index_probe::names_user;
using index_probe::tag_of;
using index_probe::walk;

namespace {

constexpr char kMagic[8] = {'A', 'P', 'X', 'I', 'D', 'X', '\r', '\n'};
constexpr std::uint32_t kVersion = 3; ///< 3: the typical hash format and cost are in the header
constexpr std::uint64_t kByteOrder = 0x0102030405060708ull; ///< a foreign-endian file fails this
constexpr std::size_t kEntryBytes = kEntryWords * sizeof(std::uint32_t);
constexpr std::size_t kSlotBytes = kSlotWords * sizeof(std::uint32_t);
constexpr std::size_t kMinSlots = 16;

/** The start of every index buffer. Sections follow in this order, nothing between. */
struct Header {
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
    std::uint64_t text_offset;    ///< always sizeof(Header)
    std::uint64_t text_bytes;     ///< the users' text plus a final NUL
    std::uint64_t entries_offset; ///< text end rounded up to 8
    std::uint64_t entry_count;
    std::uint64_t slots_offset;   ///< entries end rounded up to 8
    std::uint64_t slot_count;     ///< the slots end the buffer
    std::uint64_t distinct;
    std::uint32_t typical_format; ///< HashFormat of the most common usable (format, cost) among users
    std::uint32_t typical_cost;
    std::uint64_t check;          ///< header_check() of all the fields above
};
static_assert(sizeof(Header) == 144, "the header layout is part of the file format");


/** Catches damage to header fields that would still be in range (e.g. a text size into the padding). */
std::uint64_t header_check(const Header &h) noexcept
{
    return fnv1a(&h, offsetof(Header, check));
}

std::size_t slots_for(std::size_t entries) noexcept
{
    std::size_t capacity = kMinSlots;
    while (capacity < entries * 2) {
        capacity <<= 1;
    }
    return capacity;
}

constexpr std::uint64_t align8(std::uint64_t n) noexcept { return (n + 7) & ~std::uint64_t{7}; }

/** The (format, cost) class most users' hashes share: what an unknown user is made to cost. */
class TypicalHash {
public:
    void add(HashFormat format, std::uint32_t cost)
    {
        const std::uint64_t key = (static_cast<std::uint64_t>(format) << 32) | cost;
        const std::size_t n = ++counts_[key];
        // Ties go to the more expensive class: a guess never costs less than a real entry.
        if (n > best_count_ || (n == best_count_ && key > best_)) {
            best_ = key;
            best_count_ = n;
        }
    }
    HashFormat format() const noexcept
    {
        return best_count_ == 0 ? HashFormat::apr1_md5 : static_cast<HashFormat>(best_ >> 32);
    }
    std::uint32_t cost() const noexcept { return static_cast<std::uint32_t>(best_ & 0xffffffffu); }

private:
    std::map<std::uint64_t, std::size_t> counts_;
    std::uint64_t best_ = 0;
    std::size_t best_count_ = 0;
};

/** The O(users) part of IndexChecks::full. */
bool entries_consistent(const IndexSections &s) noexcept
{
    // Each entry: a non-empty user terminated right after its length, and a
    // hash inside the text (the final NUL ends it).
    for (std::size_t i = 0; i < s.entry_count; ++i) {
        const std::uint32_t *e = s.entries + i * kEntryWords;
        const std::uint64_t user = e[0], user_length = e[1], hash = e[2];
        if (user_length == 0 || user >= s.text_bytes || user_length >= s.text_bytes - user ||
            s.text[user + user_length] != '\0' || std::memchr(s.text + user, '\0', user_length) != nullptr ||
            hash >= s.text_bytes) {
            return false;
        }
    }
    std::size_t used = 0;
    for (std::size_t slot = 0; slot < s.slot_count; ++slot) {
        const std::uint32_t entry = s.slots[slot * kSlotWords + 1];
        if (entry > s.entry_count) {
            return false;
        }
        used += entry != 0 ? 1 : 0;
    }
    if (used != s.distinct) {
        return false;
    }
    // The table answers as a fresh parse would: every user is found, at its
    // first entry in the file. (Reaching entry i itself needs no comparison.)
    for (std::size_t i = 0; i < s.entry_count; ++i) {
        const std::uint32_t *e = s.entries + i * kEntryWords;
        const std::string_view user(s.text + e[0], e[1]);
        std::size_t found = s.entry_count;
        walk(s.slots, s.slot_count, s.entry_count, hash_user(user), [&](std::size_t, std::size_t entry) {
            if (entry == i || names_user(s, entry, user)) {
                found = entry;
                return true;
            }
            return false;
        });
        if (found > i) {
            return false;
        }
    }
    // And every occupied slot is where the lookup of its own user stops:
    // no slot is unreachable, no user has two.
    for (std::size_t slot = 0; slot < s.slot_count; ++slot) {
        const std::uint32_t entry = s.slots[slot * kSlotWords + 1];
        if (entry == 0) {
            continue;
        }
        const std::uint32_t *e = s.entries + (entry - 1) * kEntryWords;
        const std::string_view user(s.text + e[0], e[1]);
        const std::size_t stop = walk(s.slots, s.slot_count, s.entry_count, hash_user(user),
                                      [&](std::size_t, std::size_t other) { return names_user(s, other, user); });
        if (stop != slot) {
            return false;
        }
    }
    return true;
}

void fill(const char *base, const Header &h, IndexSections &out) noexcept
{
    out.text = base + h.text_offset;
    out.text_bytes = h.text_bytes;
    out.entries = reinterpret_cast<const std::uint32_t *>(base + h.entries_offset);
    out.entry_count = h.entry_count;
    out.slots = reinterpret_cast<const std::uint32_t *>(base + h.slots_offset);
    out.slot_count = h.slot_count;
    out.distinct = h.distinct;
    out.typical_format = static_cast<HashFormat>(h.typical_format);
    out.typical_cost = h.typical_cost;
    out.source = FileSignature{h.source_device, h.source_inode, h.source_size, h.source_mtime_ns, h.source_ctime_ns};
}

} // namespace

std::size_t index_header_bytes() noexcept
{
    return sizeof(Header);
}

PageString lay_out_index(std::string_view users_text, const PageVector<HtpasswdLine> &lines,
                         const FileSignature &source, std::vector<Diagnostic> *diagnostics, LayoutCounts *counts)
{
    LayoutCounts found;
    std::vector<Diagnostic> digest_notes; // said one by one only if the file is not all htdigest
    auto note = [&](std::size_t line, bool warning, std::string message) {
        if (diagnostics != nullptr) {
            diagnostics->push_back(Diagnostic{line, warning, std::move(message)});
        }
    };
    // Lay the buffer out once its size is known, and copy the text in.
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.header_bytes = sizeof(Header);
    h.byte_order = kByteOrder;
    h.source_device = source.device;
    h.source_inode = source.inode;
    h.source_size = source.size;
    h.source_mtime_ns = source.mtime_ns;
    h.source_ctime_ns = source.ctime_ns;
    h.text_offset = sizeof(Header);
    h.text_bytes = users_text.size() + 1; // a final NUL, so the last field can end too
    h.entries_offset = align8(h.text_offset + h.text_bytes);
    h.entry_count = lines.size();
    h.slots_offset = align8(h.entries_offset + h.entry_count * kEntryBytes);
    h.slot_count = slots_for(lines.size());
    h.total_bytes = h.slots_offset + h.slot_count * kSlotBytes;

    PageString heap(h.total_bytes, '\0');
    char *const buf = &heap[0];
    // Every user and hash already ends in a NUL in the parse's text.
    std::memcpy(buf + h.text_offset, users_text.data(), users_text.size());

    auto *entries = reinterpret_cast<std::uint32_t *>(buf + h.entries_offset);
    auto *slots = reinterpret_cast<std::uint32_t *>(buf + h.slots_offset);
    const char *text = buf + h.text_offset;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::uint32_t *e = entries + i * kEntryWords;
        e[0] = lines[i].user;
        e[1] = lines[i].user_length;
        e[2] = lines[i].hash;
    }

    // The slot table; of duplicates the first one in the file wins. Every
    // distinct user's hash is classified once here, for the line warnings
    // and for the typical (format, cost) unknown users are made to cost.
    TypicalHash typical;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string_view user(text + lines[i].user, lines[i].user_length);
        const std::uint64_t hash = hash_user(user);
        bool duplicate = false;
        const std::size_t slot = walk(slots, h.slot_count, i, hash, [&](std::size_t, std::size_t entry) {
            const std::uint32_t *other = entries + entry * kEntryWords;
            duplicate = other[1] == user.size() && std::memcmp(text + other[0], user.data(), user.size()) == 0;
            return duplicate;
        });
        if (duplicate) {
            note(lines[i].line, false, "duplicate entry for user '" + std::string(user) + "' ignored; the first one wins");
            continue;
        }
        slots[slot * kSlotWords] = tag_of(hash);
        slots[slot * kSlotWords + 1] = static_cast<std::uint32_t>(i + 1);
        ++h.distinct;

        const std::string_view stored(text + lines[i].hash);
        const HashFormat format = classify_hash(stored);
        if (hash_usability(stored, format) == HashUsability::usable) {
            typical.add(format, hash_cost(stored, format));
            continue;
        }
        ++found.unusable;
        std::string message = "password of user '" + std::string(user) + "': " + describe_unusable(stored, format) +
                              "; the user can never log in";
        if (lines[i].htdigest) {
            ++found.digest_like;
            if (diagnostics != nullptr) {
                digest_notes.push_back(Diagnostic{lines[i].line, true, std::move(message)});
            }
        }
        else {
            note(lines[i].line, true, std::move(message));
        }
    }
    if (found.digest_like > 0 && found.digest_like == found.unusable) {
        note(digest_notes.empty() ? 0 : digest_notes.front().line, true,
             "the file looks like an htdigest file (" + std::to_string(found.digest_like) +
                 " lines of user:realm:hash, as htdigest writes them): ProxyBasic needs an htpasswd file, made "
                 "with htpasswd; none of these users can log in");
    }
    else if (diagnostics != nullptr) {
        diagnostics->insert(diagnostics->end(), std::make_move_iterator(digest_notes.begin()),
                            std::make_move_iterator(digest_notes.end()));
    }
    if (counts != nullptr) {
        *counts = found;
    }
    h.typical_format = static_cast<std::uint32_t>(typical.format());
    h.typical_cost = typical.cost();
    h.check = header_check(h);
    std::memcpy(buf, &h, sizeof h);

    return heap;
}

bool peek_index_source(int fd, FileSignature &source) noexcept
{
    Header h;
    if (::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) ||
        std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version != kVersion || h.check != header_check(h)) {
        return false;
    }
    source = FileSignature{h.source_device, h.source_inode, h.source_size, h.source_mtime_ns, h.source_ctime_ns};
    return true;
}

bool read_index(const char *base, std::size_t bytes, IndexChecks checks, IndexSections &out,
                std::string &error) noexcept
{
    auto fail = [&](const char *why) {
        error = why;
        return false;
    };
    if (bytes < sizeof(Header)) {
        return fail("too short for an index header");
    }
    Header h;
    std::memcpy(&h, base, sizeof h);
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) {
        return fail("not an index file (bad magic)");
    }
    if (h.version != kVersion || h.header_bytes != sizeof(Header) || h.byte_order != kByteOrder) {
        return fail("index of another format version or byte order");
    }
    if (h.check != header_check(h)) {
        return fail("damaged index header (check value differs)");
    }
    if (h.total_bytes != bytes) {
        return fail("index size does not match its header (truncated?)");
    }
    // Every section lies inside the buffer, in order, with nothing between.
    const std::uint64_t size = bytes;
    if (h.text_offset != sizeof(Header) || h.text_bytes == 0 || h.text_bytes > size - h.text_offset ||
        h.text_bytes >= std::numeric_limits<std::uint32_t>::max()) {
        return fail("text section out of range");
    }
    if (h.entries_offset != align8(h.text_offset + h.text_bytes) || h.entries_offset > size ||
        h.entry_count > (size - h.entries_offset) / kEntryBytes) {
        return fail("entry section out of range");
    }
    if (h.slots_offset != align8(h.entries_offset + h.entry_count * kEntryBytes) || h.slots_offset > size ||
        h.slot_count < kMinSlots || (h.slot_count & (h.slot_count - 1)) != 0 ||
        h.slot_count > (size - h.slots_offset) / kSlotBytes || h.slots_offset + h.slot_count * kSlotBytes != size) {
        return fail("slot section out of range");
    }
    // At least one empty slot, so a lookup of an absent user ends early.
    if (h.distinct > h.entry_count || h.distinct >= h.slot_count) {
        return fail("user count out of range");
    }
    if (h.typical_format > static_cast<std::uint32_t>(HashFormat::sha512_crypt)) {
        return fail("typical hash format out of range");
    }
    if (base[h.text_offset + h.text_bytes - 1] != '\0') {
        return fail("text is not NUL-terminated");
    }
    IndexSections sections;
    fill(base, h, sections);
    if (checks == IndexChecks::full && !entries_consistent(sections)) {
        return fail("entries or slot table inconsistent with the user names");
    }
    out = sections;
    return true;
}

} // namespace auth_proxy
