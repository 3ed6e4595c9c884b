#include "auth_proxy/htpasswd_index.hpp"

#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

namespace auth_proxy {

namespace {

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::size_t hash_user(std::string_view user) noexcept
{
    return std::hash<std::string_view>{}(user);
}

} // namespace

HtpasswdIndex::HtpasswdIndex(std::string content, std::vector<Diagnostic> *diagnostics)
    : data_(std::move(content))
{
    if (data_.size() >= std::numeric_limits<std::uint32_t>::max()) {
        throw std::length_error("user file larger than 4 GiB");
    }
    // Make sure the last line is terminated too, so every field can be.
    data_.push_back('\0');

    struct Pending {
        std::uint32_t user, user_length, hash;
        std::size_t line;
    };
    std::vector<Pending> pending;
    pending.reserve(data_.size() / 48);

    auto note = [&](std::size_t line, bool warning, std::string message) {
        if (diagnostics != nullptr) {
            diagnostics->push_back(Diagnostic{line, warning, std::move(message)});
        }
    };

    char *const base = &data_[0];
    const std::size_t total = data_.size() - 1;
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
        char *colon = static_cast<char *>(std::memchr(base + b, ':', e - b));
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
        *colon = '\0';
        base[hash_end] = '\0';
        pending.push_back(Pending{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(user_length),
                                  static_cast<std::uint32_t>(hash_begin), line_no});
    }

    entries_.reserve(pending.size());
    std::vector<std::size_t> lines;
    lines.reserve(pending.size());
    for (const Pending &p : pending) {
        const char *hash = base + p.hash;
        entries_.push_back(Entry{base + p.user, hash, p.user_length, classify_hash(hash)});
        lines.push_back(p.line);
    }
    build_table();

    // Diagnostics about entries need the table (for duplicates) first.
    if (diagnostics != nullptr) {
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            const Entry &entry = entries_[i];
            const Entry *first = find(std::string_view(entry.user, entry.user_length));
            if (first != &entry) {
                note(lines[i], false,
                     std::string("duplicate entry for user '") + entry.user + "' ignored; the first one wins");
                continue;
            }
            if (entry.format == HashFormat::unknown) {
                note(lines[i], true,
                     std::string("password of user '") + entry.user +
                         "' is not a recognised hash (bcrypt, APR1-MD5, {SHA}, crypt, SHA-256/512 crypt);"
                         " the user can never log in");
            }
        }
    }
}

void HtpasswdIndex::build_table()
{
    std::size_t capacity = 16;
    while (capacity < entries_.size() * 2) {
        capacity <<= 1;
    }
    slots_.assign(capacity, 0);
    const std::size_t mask = capacity - 1;
    for (std::uint32_t i = 0; i < entries_.size(); ++i) {
        const std::string_view user(entries_[i].user, entries_[i].user_length);
        std::size_t slot = hash_user(user) & mask;
        bool duplicate = false;
        while (slots_[slot] != 0) {
            const Entry &other = entries_[slots_[slot] - 1];
            if (std::string_view(other.user, other.user_length) == user) {
                duplicate = true; // first one in the file wins
                break;
            }
            slot = (slot + 1) & mask;
        }
        if (!duplicate) {
            slots_[slot] = i + 1;
            ++distinct_;
        }
    }
}

const HtpasswdIndex::Entry *HtpasswdIndex::find(std::string_view user) const noexcept
{
    const std::size_t mask = slots_.size() - 1;
    std::size_t slot = hash_user(user) & mask;
    while (slots_[slot] != 0) {
        const Entry &entry = entries_[slots_[slot] - 1];
        if (entry.user_length == user.size() && std::memcmp(entry.user, user.data(), user.size()) == 0) {
            return &entry;
        }
        slot = (slot + 1) & mask;
    }
    return nullptr;
}

std::size_t HtpasswdIndex::memory_bytes() const noexcept
{
    return sizeof(*this) + data_.capacity() + entries_.capacity() * sizeof(Entry) +
           slots_.capacity() * sizeof(std::uint32_t);
}

} // namespace auth_proxy
