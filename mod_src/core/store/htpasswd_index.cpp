#include "auth_proxy/store/htpasswd_index.hpp"

#include "index_probe.hpp"

#include "auth_proxy/posix.hpp"

#include <algorithm>
#include <stdexcept>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <sys/mman.h>
#include <sys/stat.h>

namespace auth_proxy {

HtpasswdIndex::HtpasswdIndex(std::string_view content, std::vector<Diagnostic> *diagnostics,
                             const FileSignature &source, MalformedLines *malformed)
{
    const ParsedUsers parsed = parse_htpasswd(content);
    build(parsed, diagnostics, source);
    if (malformed != nullptr) {
        *malformed = parsed.malformed;
    }
}

HtpasswdIndex::HtpasswdIndex(const ParsedUsers &parsed, std::vector<Diagnostic> *diagnostics,
                             const FileSignature &source)
{
    build(parsed, diagnostics, source);
}

void HtpasswdIndex::build(const ParsedUsers &parsed, std::vector<Diagnostic> *diagnostics,
                          const FileSignature &source)
{
    LayoutCounts counts;
    heap_ = lay_out_index(parsed.text, parsed.lines, source, diagnostics, &counts);
    unusable_ = counts.unusable;
    base_ = heap_.data();
    bytes_ = heap_.size();
    std::string error;
    if (!attach(error, Checks::header)) {
        throw std::logic_error("an index just laid out does not read back: " + error);
    }
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
    if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(index_header_bytes())) {
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
    return peek_index_source(fd, source);
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

bool HtpasswdIndex::attach(std::string &error, Checks checks) noexcept
{
    return read_index(base_, bytes_, checks, s_, error);
}

HtpasswdIndex::Found HtpasswdIndex::find(std::string_view user) const noexcept
{
    using namespace index_probe;
    if (s_.slots == nullptr) {
        return Found();
    }
    Found found;
    walk(s_.slots, s_.slot_count, s_.entry_count, hash_user(user), [&](std::size_t, std::size_t entry) {
        if (!names_user(s_, entry, user)) {
            return false;
        }
        const std::uint32_t *e = s_.entries + entry * kEntryWords;
        if (e[2] < s_.text_bytes) { // the final NUL ends any hash that starts inside the text
            const char *stored = s_.text + e[2];
            found = Found(Entry{s_.text + e[0], stored, e[1], classify_hash(stored)});
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
