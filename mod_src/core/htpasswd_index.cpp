#include "auth_proxy/htpasswd_index.hpp"

#include "auth_proxy/page_allocator.hpp"
#include "auth_proxy/posix.hpp"

#include <algorithm>
#include <cerrno>
#include <map>
#include <cstddef>
#include <cstring>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/stat.h>

namespace auth_proxy {

namespace {

constexpr char kMagic[8] = {'A', 'P', 'X', 'I', 'D', 'X', '\r', '\n'};
constexpr std::uint32_t kVersion = 3; ///< 3: the typical hash format and cost are in the header
constexpr std::uint64_t kByteOrder = 0x0102030405060708ull; ///< a foreign-endian file fails this
constexpr std::size_t kEntryWords = 3;                       ///< user, user length, hash
constexpr std::size_t kEntryBytes = kEntryWords * sizeof(std::uint32_t);
constexpr std::size_t kSlotWords = 2; ///< tag (high half of the user's hash), entry index + 1 (0: empty)
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
    std::uint64_t text_bytes;     ///< the file's text plus a final NUL
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

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/** FNV-1a with a final mix, so that the low bits (the slot) depend on every byte. */
std::uint64_t hash_user(std::string_view user) noexcept
{
    std::uint64_t h = fnv1a(user);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

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

/**
 * The slot's tag: the half of the user's hash the slot index does not use.
 * A probe compares user names only when the tags agree, so walking past
 * other users' slots never touches their text.
 */
constexpr std::uint32_t tag_of(std::uint64_t hash) noexcept { return static_cast<std::uint32_t>(hash >> 32); }

/**
 * The one probe walk of the slot table (linear probing from the user's
 * hash). Calls @p visit(slot, entry index) for every occupied slot whose tag
 * matches, until it returns true; stops at an empty slot, at a slot that
 * names no entry, and after one lap. @return the slot where the walk
 * stopped, or @p slot_count if it ran out.
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

} // namespace

HtpasswdIndex::HtpasswdIndex(std::string_view content, std::vector<Diagnostic> *diagnostics,
                             const FileSignature &source)
{
    if (content.size() >= std::numeric_limits<std::uint32_t>::max() - 8) {
        throw std::length_error("user file larger than 4 GiB");
    }

    // First the fields of every line, read in place; the buffer is laid out
    // once their number is known.
    struct Pending {
        std::uint32_t user, user_length, hash, hash_length;
        std::size_t line;
    };
    PageVector<Pending> pending;
    pending.reserve(content.size() / 48);

    auto note = [&](std::size_t line, bool warning, std::string message) {
        if (diagnostics != nullptr) {
            diagnostics->push_back(Diagnostic{line, warning, std::move(message)});
        }
    };

    const char *const base = content.data();
    const std::size_t total = content.size();
    std::size_t line_no = 0;
    std::size_t start = 0;
    while (start < total) {
        ++line_no;
        const char *nl = static_cast<const char *>(std::memchr(base + start, '\n', total - start));
        const std::size_t line_end = nl != nullptr ? static_cast<std::size_t>(nl - base) : total;
        std::size_t b = start, e = line_end;
        start = line_end + 1;
        while (b < e && is_space(base[b])) ++b;
        while (e > b && is_space(base[e - 1])) --e;
        if (b == e || base[b] == '#') {
            continue;
        }
        if (std::memchr(base + b, '\0', e - b) != nullptr) {
            // A name or hash with a NUL in it ends early wherever it is read
            // as a C string; no tool writes one.
            note(line_no, true, "line contains a NUL byte; ignored");
            continue;
        }
        const char *colon = static_cast<const char *>(std::memchr(base + b, ':', e - b));
        if (colon == nullptr) {
            note(line_no, true, "line has no ':' between user and password hash; ignored");
            continue;
        }
        const std::size_t user_length = static_cast<std::size_t>(colon - (base + b));
        if (user_length == 0) {
            note(line_no, true, "line has an empty user name; ignored");
            continue;
        }
        const std::size_t hash_begin = user_length + b + 1;
        // The hash ends at the next ':' (further fields are ignored, as
        // mod_authn_file does) or at the end of the line.
        const char *next = static_cast<const char *>(std::memchr(base + hash_begin, ':', e - hash_begin));
        const std::size_t hash_end = next != nullptr ? static_cast<std::size_t>(next - base) : e;
        pending.push_back(Pending{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(user_length),
                                  static_cast<std::uint32_t>(hash_begin),
                                  static_cast<std::uint32_t>(hash_end - hash_begin), line_no});
    }

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
    h.text_bytes = content.size() + 1; // a final NUL, so the last field can end too
    h.entries_offset = align8(h.text_offset + h.text_bytes);
    h.entry_count = pending.size();
    h.slots_offset = align8(h.entries_offset + h.entry_count * kEntryBytes);
    h.slot_count = slots_for(pending.size());
    h.total_bytes = h.slots_offset + h.slot_count * kSlotBytes;

    heap_.assign(h.total_bytes, '\0');
    char *const buf = &heap_[0];
    std::memcpy(buf + h.text_offset, content.data(), content.size());
    // Every user and hash ends in a NUL, in the copy: at the ':' after the
    // user, and at whatever followed the hash (':', white space, a newline,
    // or the final NUL).
    for (const Pending &p : pending) {
        buf[h.text_offset + p.user + p.user_length] = '\0';
        buf[h.text_offset + p.hash + p.hash_length] = '\0';
    }

    auto *entries = reinterpret_cast<std::uint32_t *>(buf + h.entries_offset);
    auto *slots = reinterpret_cast<std::uint32_t *>(buf + h.slots_offset);
    const char *text = buf + h.text_offset;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        std::uint32_t *e = entries + i * kEntryWords;
        e[0] = pending[i].user;
        e[1] = pending[i].user_length;
        e[2] = pending[i].hash;
    }

    // The slot table; of duplicates the first one in the file wins. Every
    // distinct user's hash is classified once here, for the line warnings
    // and for the typical (format, cost) unknown users are made to cost.
    TypicalHash typical;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        const std::string_view user(text + pending[i].user, pending[i].user_length);
        const std::uint64_t hash = hash_user(user);
        bool duplicate = false;
        const std::size_t slot = walk(slots, h.slot_count, i, hash, [&](std::size_t, std::size_t entry) {
            const std::uint32_t *other = entries + entry * kEntryWords;
            duplicate = other[1] == user.size() && std::memcmp(text + other[0], user.data(), user.size()) == 0;
            return duplicate;
        });
        if (duplicate) {
            note(pending[i].line, false, "duplicate entry for user '" + std::string(user) + "' ignored; the first one wins");
            continue;
        }
        slots[slot * kSlotWords] = tag_of(hash);
        slots[slot * kSlotWords + 1] = static_cast<std::uint32_t>(i + 1);
        ++h.distinct;

        const std::string_view stored(text + pending[i].hash);
        const HashFormat format = classify_hash(stored);
        if (hash_usability(stored, format) == HashUsability::usable) {
            typical.add(format, hash_cost(stored, format));
        }
        else {
            note(pending[i].line, true,
                 "password of user '" + std::string(user) + "': " + describe_unusable(stored, format) +
                     "; the user can never log in");
        }
    }
    h.typical_format = static_cast<std::uint32_t>(typical.format());
    h.typical_cost = typical.cost();
    h.check = header_check(h);
    std::memcpy(buf, &h, sizeof h);

    base_ = buf;
    bytes_ = heap_.size();
    adopt(&h);
    if (diagnostics != nullptr) {
        std::stable_sort(diagnostics->begin(), diagnostics->end(),
                         [](const Diagnostic &a, const Diagnostic &b) { return a.line < b.line; });
    }
}

HtpasswdIndex::~HtpasswdIndex()
{
    if (mapping_ != nullptr) {
        ::munmap(mapping_, bytes_);
    }
}

std::shared_ptr<const HtpasswdIndex> HtpasswdIndex::map(int fd, std::string &error, Checks checks)
{
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        error = errno_text("fstat", errno);
        return nullptr;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Header))) {
        error = "too short for an index header";
        return nullptr;
    }
    void *p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        error = errno_text("mmap", errno);
        return nullptr;
    }
    std::shared_ptr<HtpasswdIndex> index(new HtpasswdIndex);
    index->mapping_ = p; // unmapped by the destructor, whatever happens next
    index->base_ = static_cast<const char *>(p);
    index->bytes_ = static_cast<std::size_t>(st.st_size);
    if (!index->attach(error, checks)) {
        return nullptr;
    }
    return index;
}

bool HtpasswdIndex::peek_source(int fd, FileSignature &source) noexcept
{
    Header h;
    if (::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) ||
        std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version != kVersion || h.check != header_check(h)) {
        return false;
    }
    source = FileSignature{h.source_device, h.source_inode, h.source_size, h.source_mtime_ns, h.source_ctime_ns};
    return true;
}

std::shared_ptr<const HtpasswdIndex> HtpasswdIndex::from_serialized(std::string_view bytes, std::string &error)
{
    std::shared_ptr<HtpasswdIndex> index(new HtpasswdIndex);
    index->heap_.assign(bytes.data(), bytes.size());
    index->base_ = index->heap_.data();
    index->bytes_ = index->heap_.size();
    if (!index->attach(error, Checks::full)) {
        return nullptr;
    }
    return index;
}

void HtpasswdIndex::adopt(const void *header) noexcept
{
    const auto &h = *static_cast<const Header *>(header);
    text_ = base_ + h.text_offset;
    text_bytes_ = h.text_bytes;
    entries_ = reinterpret_cast<const std::uint32_t *>(base_ + h.entries_offset);
    entry_count_ = h.entry_count;
    slots_ = reinterpret_cast<const std::uint32_t *>(base_ + h.slots_offset);
    slot_count_ = h.slot_count;
    distinct_ = h.distinct;
    typical_format_ = static_cast<HashFormat>(h.typical_format);
    typical_cost_ = h.typical_cost;
    source_ = FileSignature{h.source_device, h.source_inode, h.source_size, h.source_mtime_ns, h.source_ctime_ns};
}

bool HtpasswdIndex::attach(std::string &error, Checks checks) noexcept
{
    auto fail = [&](const char *why) {
        error = why;
        return false;
    };
    if (bytes_ < sizeof(Header)) {
        return fail("too short for an index header");
    }
    Header h;
    std::memcpy(&h, base_, sizeof h);
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) {
        return fail("not an index file (bad magic)");
    }
    if (h.version != kVersion || h.header_bytes != sizeof(Header) || h.byte_order != kByteOrder) {
        return fail("index of another format version or byte order");
    }
    if (h.check != header_check(h)) {
        return fail("damaged index header (check value differs)");
    }
    if (h.total_bytes != bytes_) {
        return fail("index size does not match its header (truncated?)");
    }
    // Every section lies inside the buffer, in order, with nothing between.
    const std::uint64_t size = bytes_;
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
    if (base_[h.text_offset + h.text_bytes - 1] != '\0') {
        return fail("text is not NUL-terminated");
    }
    adopt(&h);
    if (checks == Checks::header) {
        return true;
    }
    if (!entries_consistent()) {
        slots_ = nullptr; // find() answers "not found" from here on
        return fail("entries or slot table inconsistent with the user names");
    }
    return true;
}

bool HtpasswdIndex::entries_consistent() const noexcept
{
    // Each entry: a non-empty user terminated right after its length, and a
    // hash inside the text (the final NUL ends it).
    for (std::size_t i = 0; i < entry_count_; ++i) {
        const std::uint32_t *e = entries_ + i * kEntryWords;
        const std::uint64_t user = e[0], user_length = e[1], hash = e[2];
        if (user_length == 0 || user >= text_bytes_ || user_length >= text_bytes_ - user ||
            text_[user + user_length] != '\0' || std::memchr(text_ + user, '\0', user_length) != nullptr ||
            hash >= text_bytes_) {
            return false;
        }
    }
    std::size_t used = 0;
    for (std::size_t s = 0; s < slot_count_; ++s) {
        const std::uint32_t entry = slots_[s * kSlotWords + 1];
        if (entry > entry_count_) {
            return false;
        }
        used += entry != 0 ? 1 : 0;
    }
    if (used != distinct_) {
        return false;
    }
    // The table answers as a fresh parse would: every user is found, at its
    // first entry in the file. (Reaching entry i itself needs no comparison.)
    for (std::size_t i = 0; i < entry_count_; ++i) {
        const std::uint32_t *e = entries_ + i * kEntryWords;
        const std::string_view user(text_ + e[0], e[1]);
        std::size_t found = entry_count_;
        walk(slots_, slot_count_, entry_count_, hash_user(user), [&](std::size_t, std::size_t entry) {
            if (entry == i || user_at(entry, user)) {
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
    for (std::size_t s = 0; s < slot_count_; ++s) {
        const std::uint32_t entry = slots_[s * kSlotWords + 1];
        if (entry == 0) {
            continue;
        }
        const std::uint32_t *e = entries_ + (entry - 1) * kEntryWords;
        const std::string_view user(text_ + e[0], e[1]);
        const std::size_t stop = walk(slots_, slot_count_, entry_count_, hash_user(user),
                                      [&](std::size_t, std::size_t other) { return user_at(other, user); });
        if (stop != s) {
            return false;
        }
    }
    return true;
}

bool HtpasswdIndex::user_at(std::size_t entry, std::string_view user) const noexcept
{
    const std::uint32_t *e = entries_ + entry * kEntryWords;
    // Bounds are checked here rather than trusted: a lookup never reads
    // outside the buffer, whatever the bytes of a mapped file say.
    return e[1] == user.size() && e[0] < text_bytes_ && user.size() < text_bytes_ - e[0] &&
           std::memcmp(text_ + e[0], user.data(), user.size()) == 0;
}

HtpasswdIndex::Found HtpasswdIndex::find(std::string_view user) const noexcept
{
    if (slots_ == nullptr) {
        return Found();
    }
    Found found;
    walk(slots_, slot_count_, entry_count_, hash_user(user), [&](std::size_t, std::size_t entry) {
        if (!user_at(entry, user)) {
            return false;
        }
        const std::uint32_t *e = entries_ + entry * kEntryWords;
        if (e[2] < text_bytes_) { // the final NUL ends any hash that starts inside the text
            const char *stored = text_ + e[2];
            found = Found(Entry{text_ + e[0], stored, e[1], classify_hash(stored)});
        }
        return true;
    });
    return found;
}

std::size_t HtpasswdIndex::memory_bytes() const noexcept
{
    return sizeof(*this) + (mapping_ != nullptr ? bytes_ : heap_.capacity());
}

std::ostream &operator<<(std::ostream &out, const HtpasswdIndex::Found &found)
{
    if (!found) {
        return out << "not found";
    }
    return out << "user '" << found->user << "' (" << format_name(found->format) << ")";
}

} // namespace auth_proxy
