#include "auth_proxy/htpasswd_index.hpp"

#include "auth_proxy/page_allocator.hpp"

#include <cerrno>
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
constexpr std::uint32_t kVersion = 2; ///< 2: tagged slots, no stored format
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
    std::uint64_t check;          ///< header_check() of all the fields above
};
static_assert(sizeof(Header) == 136, "the header layout is part of the file format");

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/**
 * FNV-1a with a final mix: our own, because the slot table is stored in
 * files that another build of the module may read.
 */
std::uint64_t hash_user(std::string_view user) noexcept
{
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : user) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/** Catches damage to header fields that would still be in range (e.g. a text size into the padding). */
std::uint64_t header_check(const Header &h) noexcept
{
    std::uint64_t c = 0xcbf29ce484222325ull;
    const auto *bytes = reinterpret_cast<const unsigned char *>(&h);
    for (std::size_t i = 0; i < offsetof(Header, check); ++i) {
        c = (c ^ bytes[i]) * 0x100000001b3ull;
    }
    return c;
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

bool same_user(const char *text, const std::uint32_t *entry, std::string_view user) noexcept
{
    return entry[1] == user.size() && std::memcmp(text + entry[0], user.data(), user.size()) == 0;
}

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

    // The slot table; of duplicates the first one in the file wins.
    std::vector<bool> duplicate(pending.size(), false);
    const std::size_t mask = h.slot_count - 1;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        const std::string_view user(text + pending[i].user, pending[i].user_length);
        const std::uint64_t hash = hash_user(user);
        std::size_t slot = hash & mask;
        while (slots[slot * kSlotWords + 1] != 0) {
            if (slots[slot * kSlotWords] == tag_of(hash) &&
                same_user(text, entries + (slots[slot * kSlotWords + 1] - 1) * kEntryWords, user)) {
                duplicate[i] = true;
                break;
            }
            slot = (slot + 1) & mask;
        }
        if (!duplicate[i]) {
            slots[slot * kSlotWords] = tag_of(hash);
            slots[slot * kSlotWords + 1] = static_cast<std::uint32_t>(i + 1);
            ++h.distinct;
        }
    }
    h.check = header_check(h);
    std::memcpy(buf, &h, sizeof h);

    base_ = buf;
    bytes_ = heap_.size();
    text_ = text;
    entries_ = entries;
    entry_count_ = pending.size();
    slots_ = slots;
    slot_count_ = h.slot_count;
    distinct_ = h.distinct;
    source_ = source;

    if (diagnostics != nullptr) {
        for (std::size_t i = 0; i < pending.size(); ++i) {
            const char *user = text + pending[i].user;
            if (duplicate[i]) {
                note(pending[i].line, false,
                     std::string("duplicate entry for user '") + user + "' ignored; the first one wins");
                continue;
            }
            if (classify_hash(text + pending[i].hash) == HashFormat::unknown) {
                note(pending[i].line, true,
                     std::string("password of user '") + user +
                         "' is not a recognised hash (bcrypt, APR1-MD5, {SHA}, crypt, SHA-256/512 crypt);"
                         " the user can never log in");
            }
        }
    }
}

HtpasswdIndex::~HtpasswdIndex()
{
    if (mapping_ != nullptr) {
        ::munmap(mapping_, bytes_);
    }
}

std::shared_ptr<const HtpasswdIndex> HtpasswdIndex::map(int fd, std::string &error, bool check_entries)
{
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        error = std::string("fstat: ") + std::strerror(errno);
        return nullptr;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Header))) {
        error = "too short for an index header";
        return nullptr;
    }
    void *p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        error = std::string("mmap: ") + std::strerror(errno);
        return nullptr;
    }
    std::shared_ptr<HtpasswdIndex> index(new HtpasswdIndex);
    index->mapping_ = p; // unmapped by the destructor, whatever happens next
    index->base_ = static_cast<const char *>(p);
    index->bytes_ = static_cast<std::size_t>(st.st_size);
    if (!index->attach(error, check_entries)) {
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
    source.device = h.source_device;
    source.inode = h.source_inode;
    source.size = h.source_size;
    source.mtime_ns = h.source_mtime_ns;
    source.ctime_ns = h.source_ctime_ns;
    return true;
}

std::shared_ptr<const HtpasswdIndex> HtpasswdIndex::from_serialized(std::string_view bytes, std::string &error)
{
    std::shared_ptr<HtpasswdIndex> index(new HtpasswdIndex);
    index->heap_.assign(bytes.data(), bytes.size());
    index->base_ = index->heap_.data();
    index->bytes_ = index->heap_.size();
    if (!index->attach(error)) {
        return nullptr;
    }
    return index;
}

bool HtpasswdIndex::attach(std::string &error, bool check_entries) noexcept
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
    // At least one empty slot, or a lookup of an absent user would never end.
    if (h.distinct > h.entry_count || h.distinct >= h.slot_count) {
        return fail("user count out of range");
    }
    const char *text = base_ + h.text_offset;
    const std::uint64_t text_bytes = h.text_bytes;
    if (text[text_bytes - 1] != '\0') {
        return fail("text is not NUL-terminated");
    }
    const auto *entries = reinterpret_cast<const std::uint32_t *>(base_ + h.entries_offset);
    const auto *slots = reinterpret_cast<const std::uint32_t *>(base_ + h.slots_offset);

    if (!check_entries) {
        text_ = text;
        entries_ = entries;
        entry_count_ = h.entry_count;
        slots_ = slots;
        slot_count_ = h.slot_count;
        distinct_ = h.distinct;
        source_ = FileSignature{h.source_device, h.source_inode, h.source_size, h.source_mtime_ns, h.source_ctime_ns};
        return true;
    }
    // Each entry: a non-empty user terminated right after its length, and a
    // hash inside the text (the final NUL ends it).
    for (std::uint64_t i = 0; i < h.entry_count; ++i) {
        const std::uint32_t *e = entries + i * kEntryWords;
        const std::uint64_t user = e[0], user_length = e[1], hash = e[2];
        if (user_length == 0 || user >= text_bytes || user_length >= text_bytes - user ||
            text[user + user_length] != '\0' || std::memchr(text + user, '\0', user_length) != nullptr) {
            return fail("entry user out of range");
        }
        if (hash >= text_bytes) {
            return fail("entry hash out of range");
        }
    }
    std::uint64_t used = 0;
    for (std::uint64_t s = 0; s < h.slot_count; ++s) {
        const std::uint32_t entry = slots[s * kSlotWords + 1];
        if (entry > h.entry_count) {
            return fail("slot out of range");
        }
        used += entry != 0 ? 1 : 0;
    }
    if (used != h.distinct) {
        return fail("slot count does not match the user count");
    }

    text_ = text;
    entries_ = entries;
    entry_count_ = h.entry_count;
    slots_ = slots;
    slot_count_ = h.slot_count;
    distinct_ = h.distinct;
    source_.device = h.source_device;
    source_.inode = h.source_inode;
    source_.size = h.source_size;
    source_.mtime_ns = h.source_mtime_ns;
    source_.ctime_ns = h.source_ctime_ns;

    // The table answers as a fresh parse would: every user is found, at its
    // first entry in the file. (Reaching entry i itself needs no comparison.)
    const std::size_t mask = slot_count_ - 1;
    for (std::size_t i = 0; i < entry_count_; ++i) {
        const std::uint32_t *e = entries_ + i * kEntryWords;
        const std::string_view user(text_ + e[0], e[1]);
        const std::uint64_t hash = hash_user(user);
        std::size_t slot = hash & mask;
        std::size_t found = entry_count_;
        for (std::uint32_t entry; (entry = slots_[slot * kSlotWords + 1]) != 0; slot = (slot + 1) & mask) {
            if (slots_[slot * kSlotWords] == tag_of(hash) &&
                (entry - 1 == i || same_user(text_, entries_ + (entry - 1) * kEntryWords, user))) {
                found = entry - 1;
                break;
            }
        }
        if (found > i) {
            entries_ = nullptr;
            slots_ = nullptr;
            return fail("slot table does not lead to every user's first entry");
        }
    }
    return true;
}

HtpasswdIndex::Found HtpasswdIndex::find(std::string_view user) const noexcept
{
    const std::size_t mask = slot_count_ - 1;
    const std::uint64_t hash = hash_user(user);
    for (std::size_t slot = hash & mask; slots_[slot * kSlotWords + 1] != 0; slot = (slot + 1) & mask) {
        const std::uint32_t *e = entries_ + (slots_[slot * kSlotWords + 1] - 1) * kEntryWords;
        if (slots_[slot * kSlotWords] == tag_of(hash) && same_user(text_, e, user)) {
            const char *stored = text_ + e[2];
            return Found(Entry{text_ + e[0], stored, e[1], classify_hash(stored)});
        }
    }
    return Found();
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
