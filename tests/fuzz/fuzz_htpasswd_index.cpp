// Fuzz target: building an HtpasswdIndex from arbitrary text, and reading
// the serialized index back.
//
// A reference parse of the line rules in htpasswd_index.hpp (comments,
// blanks, white space, lines with a NUL refused, the hash ending at the
// next ':', first duplicate wins) says which users must be found and with
// which hash. Then the bytes
// of serialized() go through from_serialized(), the path every other server
// process takes through map(): the reader must accept what the builder
// wrote and answer every lookup exactly as the built index does.

#include "auth_proxy/store/htpasswd_index.hpp"

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using auth_proxy::classify_hash;
using auth_proxy::Diagnostic;
using auth_proxy::FileSignature;
using auth_proxy::HashFormat;
using auth_proxy::HtpasswdIndex;

namespace {

bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

struct ReferenceLine {
    std::string user;
    std::string hash;
};

/** The line rules of htpasswd_index.hpp, applied without the index. */
struct Reference {
    std::vector<ReferenceLine> entries;         // file order, duplicates included
    std::map<std::string, std::string> first;   // user -> hash of its first line
    std::vector<std::string> ignored_lines;     // trimmed lines without a user
    std::size_t refused = 0;                    // lines with a NUL, without ':' or with an empty user
    std::size_t lines = 0;
};

Reference reference_parse(std::string_view content)
{
    Reference ref;
    std::size_t start = 0;
    while (start < content.size()) {
        ++ref.lines;
        std::size_t end = content.find('\n', start);
        if (end == std::string_view::npos) {
            end = content.size();
        }
        std::string_view line = content.substr(start, end - start);
        start = end + 1;
        if (line.size() > auth_proxy::kMaxLineBytes) {
            ++ref.refused; // as mod_authn_file, nothing after a line too long to read counts
            break;
        }
        while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
        while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
        if (line.empty() || line.front() == '#') {
            ref.ignored_lines.emplace_back(line);
            continue;
        }
        if (line.find('\0') != std::string_view::npos) {
            // A NUL would end a name or hash early wherever it is read as a C string.
            ref.ignored_lines.emplace_back(line);
            ++ref.refused;
            continue;
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            ref.ignored_lines.emplace_back(line);
            ++ref.refused;
            continue;
        }
        std::string_view hash = line.substr(colon + 1);
        hash = hash.substr(0, hash.find(':'));
        ref.entries.push_back(ReferenceLine{std::string(line.substr(0, colon)), std::string(hash)});
        ref.first.emplace(ref.entries.back().user, ref.entries.back().hash); // keeps the first
    }
    return ref;
}

/** What a lookup answered, in a form two indexes can be compared by. */
struct Answer {
    bool found = false;
    std::string user;
    std::string hash;
    HashFormat format = HashFormat::unknown;
    bool operator==(const Answer &o) const
    {
        return found == o.found && user == o.user && hash == o.hash && format == o.format;
    }
};

/** Looks @p name up, checking that the entry's pointers stay inside the index's buffer. */
Answer lookup(const HtpasswdIndex &index, std::string_view name)
{
    const HtpasswdIndex::Found found = index.find(name);
    if (!found) {
        return Answer{};
    }
    const std::string_view buffer = index.serialized();
    const char *begin = buffer.data();
    const char *end = buffer.data() + buffer.size();
    FUZZ_CHECK(found->user >= begin && found->user + found->user_length < end, "user outside the index");
    FUZZ_CHECK(found->user[found->user_length] == '\0', "user not NUL-terminated");
    FUZZ_CHECK(found->hash >= begin && found->hash < end, "hash outside the index");
    FUZZ_CHECK(std::memchr(found->hash, '\0', static_cast<std::size_t>(end - found->hash)) != nullptr,
               "hash not NUL-terminated inside the index");
    const std::string user(found->user, found->user_length);
    FUZZ_CHECK(user == name, "find(" + fuzz::hex(name) + ") answered user " + fuzz::hex(user));
    FUZZ_CHECK(found->format == classify_hash(found->hash), "format is not the hash's own");
    return Answer{true, user, found->hash, found->format};
}

/** Names worth looking up: every user, and near misses of users and lines. */
std::vector<std::string> probe_names(const Reference &ref)
{
    std::vector<std::string> names = {"", "alice", "#"};
    for (const ReferenceLine &e : ref.entries) {
        names.push_back(e.user);
        names.push_back(e.user + '\0');
        names.push_back(e.user.substr(0, e.user.size() - 1));
        names.push_back(e.user.substr(0, e.user.find('\0')));
        names.push_back(e.user + ":" + e.hash);
    }
    for (const std::string &line : ref.ignored_lines) {
        names.push_back(line);
    }
    return names;
}

void check_diagnostics(const std::vector<Diagnostic> &diagnostics, const Reference &ref, const HtpasswdIndex &index)
{
    std::size_t warnings = 0, notes = 0;
    for (const Diagnostic &d : diagnostics) {
        FUZZ_CHECK(d.line >= 1 && d.line <= ref.lines, "diagnostic for line " + std::to_string(d.line));
        FUZZ_CHECK(!d.message.empty(), "empty diagnostic");
        (d.warning ? warnings : notes) += 1;
    }
    std::size_t unknown = 0;
    for (const auto &user : ref.first) {
        unknown += classify_hash(user.second) == HashFormat::unknown ? 1 : 0;
    }
    // One note per ignored duplicate; one warning per user that can never
    // log in: every user of an unknown format, and at most every other user
    // too (a hash over the cost limit is unusable). Refused lines are only counted.
    FUZZ_CHECK(notes == ref.entries.size() - index.size(), std::to_string(notes) + " duplicate notes");
    FUZZ_CHECK(warnings >= unknown && warnings <= ref.first.size(),
               std::to_string(warnings) + " warnings for " + std::to_string(unknown) + " unknown and " +
                   std::to_string(ref.first.size()) + " users");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string_view content = fuzz::as_view(data, size);
    const Reference ref = reference_parse(content);

    std::vector<Diagnostic> diagnostics;
    auth_proxy::MalformedLines malformed;
    const HtpasswdIndex built(content, &diagnostics, FileSignature{}, &malformed);
    FUZZ_CHECK(malformed.total() == ref.refused,
               std::to_string(malformed.total()) + " malformed lines, expected " + std::to_string(ref.refused));

    // Every user of the file is found with the hash of its first line.
    FUZZ_CHECK(built.size() == ref.first.size(),
               std::to_string(built.size()) + " users, expected " + std::to_string(ref.first.size()));
    for (const auto &user : ref.first) {
        const Answer a = lookup(built, user.first);
        FUZZ_CHECK(a.found, "user " + fuzz::hex(user.first) + " not found");
        FUZZ_CHECK(a.hash == user.second,
                   "user " + fuzz::hex(user.first) + " has hash " + fuzz::hex(a.hash) + ", first line says " +
                       fuzz::hex(user.second));
    }
    check_diagnostics(diagnostics, ref, built);

    const std::vector<std::string> names = probe_names(ref);
    for (const std::string &name : names) {
        const Answer a = lookup(built, name);
        FUZZ_CHECK(a.found == (ref.first.count(name) != 0), "find(" + fuzz::hex(name) + ") disagrees with the file");
    }

    // What the builder serializes, the reader accepts, and it answers alike.
    std::string error;
    const std::shared_ptr<const HtpasswdIndex> read = HtpasswdIndex::from_serialized(built.serialized(), error);
    FUZZ_CHECK(read != nullptr, "from_serialized() refused a built index: " + error);
    FUZZ_CHECK(read->serialized() == built.serialized(), "the copy differs from the built bytes");
    FUZZ_CHECK(read->size() == built.size(), "user count differs after reading back");
    FUZZ_CHECK(read->source() == built.source(), "source signature differs after reading back");
    for (const std::string &name : names) {
        FUZZ_CHECK(lookup(*read, name) == lookup(built, name), "find(" + fuzz::hex(name) + ") differs after reading back");
    }
    return 0;
}
