// Specification of how an htpasswd file's text becomes the user index:
// which lines count, which are ignored, and what the operator is told.

#include "auth_proxy/store/htpasswd_index.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

using auth_proxy::classify_hash;
using auth_proxy::Diagnostic;
using auth_proxy::format_name;
using auth_proxy::HashFormat;
using auth_proxy::FileSignature;
using auth_proxy::HtpasswdIndex;
using auth_proxy::HtpasswdParser;
using auth_proxy::kMaxLineBytes;
using auth_proxy::MalformedLines;
using auth_proxy::parse_htpasswd;
using auth_proxy::ParsedUsers;

BOOST_AUTO_TEST_SUITE(htpasswd_index)

namespace {

const std::string kApr1 = "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61";
const std::string kSha = "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=";
const std::string kBcrypt = "$2y$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a";
const std::string kDes = "MsrIo421jkpjY";

struct ExpectedDiagnostic {
    std::size_t line;
    bool warning;
    std::string mentions; // a piece of the message
};

struct IndexCase {
    const char *rule;
    std::string content;
    std::vector<std::pair<std::string, std::string>> users; // every user and the hash it maps to
    std::vector<std::string> absent;                        // names that must not be found
    std::vector<ExpectedDiagnostic> diagnostics;            // in line order
    std::string malformed = "";                             // MalformedLines::describe(), if any
};

/** Checks one found entry against the hash it should carry. */
void check_entry(const HtpasswdIndex &index, const std::string &user, const std::string &hash)
{
    const HtpasswdIndex::Found entry = index.find(user);
    BOOST_TEST_REQUIRE(entry != nullptr, "user '" << user << "' not found");
    BOOST_TEST(entry->user_length == user.size());
    BOOST_TEST(std::string(entry->user, entry->user_length) == user);
    BOOST_TEST(entry->user[entry->user_length] == '\0');
    BOOST_TEST(std::string(entry->hash) == hash);
    BOOST_TEST(std::string(format_name(entry->format)) == format_name(classify_hash(hash)));
}

} // namespace

BOOST_AUTO_TEST_CASE(line_rules_table)
{
    const std::vector<IndexCase> cases = {
        {"comments and blank lines are skipped",
         "# users of the proxy\n\nalice:" + kApr1 + "\n   # indented comment\n\t\nbob:" + kSha + "\n",
         {{"alice", kApr1}, {"bob", kSha}},
         {"# users of the proxy", "#", "   # indented comment"},
         {}},
        {"CRLF line endings are not part of the hash",
         "alice:" + kApr1 + "\r\nbob:" + kSha + "\r\n\r\n",
         {{"alice", kApr1}, {"bob", kSha}},
         {},
         {}},
        {"white space around a line is ignored",
         "  alice:" + kApr1 + "  \n\tbob:" + kSha + "\t\r\n",
         {{"alice", kApr1}, {"bob", kSha}},
         {"  alice", "\tbob"},
         {}},
        {"of duplicate users the first wins, and the operator is told",
         "alice:" + kApr1 + "\nbob:" + kSha + "\nalice:" + kBcrypt + "\n",
         {{"alice", kApr1}, {"bob", kSha}},
         {},
         {{3, false, "duplicate entry for user 'alice'"}}},
        {"fields after the hash are ignored",
         "alice:" + kApr1 + ":Alice Example:admin\nbob:" + kSha + ":\n",
         {{"alice", kApr1}, {"bob", kSha}},
         {},
         {}},
        {"a line without ':' is ignored and counted",
         "alice:" + kApr1 + "\njust-a-name\nbob:" + kSha + "\n",
         {{"alice", kApr1}, {"bob", kSha}},
         {"just-a-name"},
         {},
         "1 without ':' between user and password hash (first: line 2)"},
        {"an empty user name is ignored and counted",
         "alice:" + kApr1 + "\n:" + kSha + "\n",
         {{"alice", kApr1}},
         {""},
         {},
         "1 with an empty user name (first: line 2)"},
        {"an unrecognised hash is kept (it never matches) and named in a warning",
         "carol:secret\nalice:" + kApr1 + "\n",
         {{"carol", "secret"}, {"alice", kApr1}},
         {},
         {{1, true, "user 'carol'"}}},
        {"an empty hash is unrecognised", "carol:\n", {{"carol", ""}}, {}, {{1, true, "user 'carol'"}}},
        {"the last line needs no newline",
         "alice:" + kApr1 + "\nbob:" + kSha,
         {{"alice", kApr1}, {"bob", kSha}},
         {},
         {}},
        {"an empty file has no users", "", {}, {"alice", ""}, {}},
        {"a file of comments and blanks has no users",
         "#\n\n   \n\r\n# alice:" + kApr1 + "\n",
         {},
         {"alice", "#"},
         {}},
        {"UTF-8 user names are exact byte strings",
         "j\xc3\xbcrgen:" + kSha + "\n\xe7\x8e\x8b:" + kDes + "\n",
         {{"j\xc3\xbcrgen", kSha}, {"\xe7\x8e\x8b", kDes}},
         {"jurgen", "J\xc3\x9crgen", "j\xc3\xbc"},
         {}},
        {"lookups are exact and case-sensitive",
         "alice:" + kApr1 + "\n",
         {{"alice", kApr1}},
         {"Alice", "ALICE", "alic", "alice2", "alice ", " alice", "alice:", std::string("alice\0", 6)},
         {}},
        {"every format keeps its hash",
         "a:" + kApr1 + "\nb:" + kSha + "\nc:" + kBcrypt + "\nd:" + kDes + "\n",
         {{"a", kApr1}, {"b", kSha}, {"c", kBcrypt}, {"d", kDes}},
         {},
         {}},
        {"line numbers count comments, blank lines and CRLF lines",
         "# c\r\n\r\nnocolon\r\nalice:" + kApr1 + "\r\n:x\r\nnope\r\n",
         {{"alice", kApr1}},
         {"nocolon"},
         {},
         "2 without ':' between user and password hash (first: line 3), 1 with an empty user name (first: line 5)"},
        {"a duplicate of an unrecognised entry: the first still wins",
         "carol:secret\ncarol:" + kApr1 + "\n",
         {{"carol", "secret"}},
         {},
         {{1, true, "user 'carol'"}, {2, false, "duplicate entry for user 'carol'"}}},
    };

    for (const IndexCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            std::vector<Diagnostic> diagnostics;
            MalformedLines malformed;
            const HtpasswdIndex index(c.content, &diagnostics, FileSignature{}, &malformed);

            BOOST_TEST(index.size() == c.users.size());
            BOOST_TEST(malformed.describe(kMaxLineBytes) == c.malformed);
            for (const auto &user : c.users) {
                BOOST_TEST_CONTEXT("user " << user.first)
                {
                    check_entry(index, user.first, user.second);
                }
            }
            for (const std::string &name : c.absent) {
                BOOST_TEST(index.find(name) == nullptr, "'" << name << "' should not be found");
            }

            std::stable_sort(diagnostics.begin(), diagnostics.end(),
                             [](const Diagnostic &a, const Diagnostic &b) { return a.line < b.line; });
            BOOST_TEST_REQUIRE(diagnostics.size() == c.diagnostics.size());
            for (std::size_t i = 0; i < diagnostics.size(); ++i) {
                BOOST_TEST_CONTEXT("diagnostic " << i << ": " << diagnostics[i].message)
                {
                    BOOST_TEST(diagnostics[i].line == c.diagnostics[i].line);
                    BOOST_TEST(diagnostics[i].warning == c.diagnostics[i].warning);
                    BOOST_TEST(diagnostics[i].message.find(c.diagnostics[i].mentions) != std::string::npos);
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(htdigest_lines_are_told_apart_from_other_unusable_entries)
{
    static const struct {
        const char *line;
        bool htdigest;
    } cases[] = {
        {"alice:Realm:85a541fe57a5c9e407c5ed51e09abd3c", true},
        {"alice:My Realm:85a541fe57a5c9e407c5ed51e09abd3c", true},
        {"alice:Realm:85A541FE57A5C9E407C5ED51E09ABD3C", false}, // htdigest writes lower case
        {"alice:Realm:85a541fe57a5c9e407c5ed51e09abd3", false},  // 31 digits
        {"alice:$apr1$abc$def:comment", false},
        {"alice:plain", false},
    };
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT(c.line)
        {
            const ParsedUsers parsed = parse_htpasswd(std::string(c.line) + "\n");
            BOOST_TEST_REQUIRE(parsed.lines.size() == 1u);
            BOOST_TEST(parsed.lines[0].htdigest == c.htdigest);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_file_of_htdigest_lines_gets_one_note_and_counts_its_users_unusable)
{
    std::vector<Diagnostic> notes;
    const HtpasswdIndex digest("alice:R:85a541fe57a5c9e407c5ed51e09abd3c\nbob:R:85a541fe57a5c9e407c5ed51e09abd3d\n",
                               &notes);
    BOOST_TEST(digest.size() == 2u);
    BOOST_TEST(digest.unusable_users() == 2u);
    BOOST_TEST_REQUIRE(notes.size() == 1u);
    BOOST_TEST(notes[0].line == 1u);
    BOOST_TEST(notes[0].message.find("looks like an htdigest file (2 lines") != std::string::npos);

    // Mixed in with real entries, each is named on its own line.
    notes.clear();
    const HtpasswdIndex mixed("alice:R:85a541fe57a5c9e407c5ed51e09abd3c\nbob:plain\n"
                              "carol:$apr1$x1y2z3w4$AbCdEfGhIjKlMnOpQrStU.\n",
                              &notes);
    BOOST_TEST(mixed.unusable_users() == 2u);
    BOOST_TEST(notes.size() == 2u);
    for (const Diagnostic &d : notes) {
        BOOST_TEST(d.message.find("htdigest") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(an_unrecognised_entry_has_format_unknown)
{
    const HtpasswdIndex index("carol:password123\n");
    const HtpasswdIndex::Found carol = index.find("carol");
    BOOST_TEST_REQUIRE(carol != nullptr);
    BOOST_TEST(std::string(format_name(carol->format)) == format_name(HashFormat::unknown));
}

BOOST_AUTO_TEST_CASE(diagnostics_are_optional)
{
    const HtpasswdIndex index("nocolon\n:empty\ncarol:secret\ncarol:" + kApr1 + "\nalice:" + kApr1 + "\n");
    BOOST_TEST(index.size() == 2u);
    BOOST_TEST(index.find("alice") != nullptr);
    BOOST_TEST(std::string(index.find("carol")->hash) == "secret");
}

namespace {

const std::string &generated_hash(std::size_t i)
{
    static const std::string hashes[] = {kApr1, kSha, kBcrypt, kDes};
    return hashes[i % 4];
}

std::string generated_user(std::size_t i)
{
    char name[32];
    std::snprintf(name, sizeof name, "user%06zu", i);
    return name;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_line_over_the_cap_ends_the_file_as_mod_authn_file_ends_it)
{
    // mod_authn_file stops at a line longer than it reads: the users after
    // one are never admitted where stock httpd would refuse them.
    const std::string at_cap = "bob:" + std::string(kMaxLineBytes - 4, 'h'); // exactly the cap
    const std::string over_cap = std::string(kMaxLineBytes - 1, 'u') + ":x";  // one byte more
    const std::string content = "alice:" + kApr1 + "\n" + at_cap + "\n" + over_cap + "\ncarol:" + kBcrypt + "\n";
    MalformedLines malformed;
    const HtpasswdIndex index(content, nullptr, FileSignature{}, &malformed);

    BOOST_TEST(index.size() == 2u);
    check_entry(index, "alice", kApr1);
    BOOST_TEST(index.find("bob") != nullptr);
    BOOST_TEST(index.find("carol") == nullptr);
    BOOST_TEST(malformed.too_long_at == 3u);
    BOOST_TEST(malformed.total() == 1u);
    BOOST_TEST(malformed.describe(kMaxLineBytes).find("line 3 longer than 4096 bytes") != std::string::npos,
               malformed.describe(kMaxLineBytes));
}

BOOST_AUTO_TEST_CASE(a_parse_fed_in_chunks_of_any_size_equals_the_whole)
{
    const std::string content = "# users\r\nalice:" + kApr1 + "\r\n\n  bob:" + kSha + ":extra\nnocolon\n" +
                                std::string("x\0y:z\n", 6) + ":empty\ncarol:" + kBcrypt;
    const ParsedUsers whole = parse_htpasswd(content);
    BOOST_TEST_REQUIRE(whole.lines.size() == 3u);
    for (std::size_t chunk = 1; chunk <= content.size(); ++chunk) {
        BOOST_TEST_CONTEXT("chunks of " << chunk << " bytes")
        {
            HtpasswdParser parser;
            for (std::size_t at = 0; at < content.size(); at += chunk) {
                BOOST_TEST_REQUIRE(parser.feed(std::string_view(content).substr(at, chunk)));
            }
            const ParsedUsers parts = parser.finish();
            BOOST_TEST(std::string(parts.text.data(), parts.text.size()) ==
                       std::string(whole.text.data(), whole.text.size()));
            BOOST_TEST_REQUIRE(parts.lines.size() == whole.lines.size());
            for (std::size_t i = 0; i < parts.lines.size(); ++i) {
                BOOST_TEST(parts.lines[i].line == whole.lines[i].line);
                BOOST_TEST(parts.lines[i].user == whole.lines[i].user);
                BOOST_TEST(parts.lines[i].hash_length == whole.lines[i].hash_length);
            }
            BOOST_TEST(parts.malformed.describe(kMaxLineBytes) == whole.malformed.describe(kMaxLineBytes));
        }
    }
    // The text holds each user and hash, NUL-terminated, and nothing else of the file.
    BOOST_TEST(std::string(whole.text.data(), whole.text.size()) ==
               std::string("alice\0", 6) + kApr1 + '\0' + "bob" + '\0' + kSha + '\0' + "carol" + '\0' + kBcrypt + '\0');
}

BOOST_AUTO_TEST_CASE(a_run_of_nul_bytes_is_refused_after_one_line_length_without_reading_on)
{
    // What a planted sparse file reads as: NUL bytes and no newline.
    const std::string zeros(64 * 1024, '\0');
    HtpasswdParser parser;
    std::size_t fed = 0;
    while (fed < 1024 && parser.feed(zeros)) { // up to 64 MiB, if it kept asking
        ++fed;
    }
    BOOST_TEST(fed == 0u); // the first chunk already holds a line over the cap
    const ParsedUsers parsed = parser.finish();
    BOOST_TEST(parsed.lines.empty());
    BOOST_TEST(parsed.malformed.too_long_at == 1u);
}

BOOST_AUTO_TEST_CASE(malformed_lines_are_counted_never_kept)
{
    // A million short bad lines: counted, and the parse holds nothing of them.
    HtpasswdParser parser;
    std::string chunk;
    for (int i = 0; i < 10000; ++i) {
        chunk += i % 2 == 0 ? std::string("\0\n", 2) : std::string("no colon here\n");
    }
    for (int i = 0; i < 100; ++i) {
        BOOST_TEST_REQUIRE(parser.feed(chunk));
    }
    BOOST_TEST_REQUIRE(parser.feed("alice:" + kApr1 + "\n"));
    const ParsedUsers parsed = parser.finish();
    BOOST_TEST(parsed.malformed.nul == 500000u);
    BOOST_TEST(parsed.malformed.no_colon == 500000u);
    BOOST_TEST(parsed.malformed.first_no_colon == 2u);
    BOOST_TEST(parsed.lines.size() == 1u);
    BOOST_TEST(parsed.lines[0].line == 1000001u);
    BOOST_TEST(parsed.text.size() == 6u + kApr1.size() + 1u);
    BOOST_TEST(parsed.text.capacity() < 4096u);
}

BOOST_AUTO_TEST_CASE(the_index_grows_with_users_not_with_the_bytes_around_them)
{
    // Comments and blank lines cost the index nothing.
    std::string content = "alice:" + kApr1 + "\n";
    for (int i = 0; i < 10000; ++i) {
        content += "# " + std::string(200, 'c') + "\n\n";
    }
    const HtpasswdIndex index(content);
    BOOST_TEST(index.size() == 1u);
    BOOST_TEST(index.memory_bytes() < 4096u, index.memory_bytes() << " bytes for a " << content.size() << "-byte file");
}

BOOST_AUTO_TEST_CASE(every_user_of_a_100000_user_file_is_found)
{
    constexpr std::size_t kUsers = 100000;
    std::string content;
    for (std::size_t i = 0; i < kUsers; ++i) {
        content += generated_user(i) + ":" + generated_hash(i) + "\n";
    }
    const std::size_t content_size = content.size();
    std::vector<Diagnostic> diagnostics;
    const HtpasswdIndex index(std::move(content), &diagnostics);

    BOOST_TEST(index.size() == kUsers);
    BOOST_TEST(diagnostics.empty());

    std::size_t missing = 0, wrong_hash = 0, wrong_format = 0, phantom = 0;
    for (std::size_t i = 0; i < kUsers; ++i) {
        const HtpasswdIndex::Found entry = index.find(generated_user(i));
        if (entry == nullptr) {
            ++missing;
            continue;
        }
        if (entry->hash != generated_hash(i)) {
            ++wrong_hash;
        }
        if (entry->format != classify_hash(generated_hash(i))) {
            ++wrong_format;
        }
    }
    for (std::size_t i = kUsers; i < 2 * kUsers; ++i) {
        if (index.find(generated_user(i)) != nullptr) {
            ++phantom;
        }
    }
    BOOST_TEST(missing == 0u);
    BOOST_TEST(wrong_hash == 0u);
    BOOST_TEST(wrong_format == 0u);
    BOOST_TEST(phantom == 0u);
    BOOST_TEST(index.find("user") == nullptr);
    BOOST_TEST(index.find("user00000") == nullptr);
    BOOST_TEST(index.find("") == nullptr);

    BOOST_TEST_MESSAGE("100000 users: " << content_size << " bytes of text, index holds "
                                        << index.memory_bytes());
    BOOST_TEST(index.memory_bytes() > content_size);
    BOOST_TEST(index.memory_bytes() < 3 * content_size);
}

BOOST_AUTO_TEST_CASE(memory_bytes_counts_an_empty_index)
{
    const HtpasswdIndex index("");
    BOOST_TEST(index.memory_bytes() > 0u);
    BOOST_TEST(index.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_line_with_a_nul_byte_is_ignored_and_counted)
{
    // A name with a NUL in it would end early wherever it is read as a C
    // string: the builder and every reader must agree it is not there.
    const std::string content = "alice:" + kApr1 + "\n" + std::string("ma\0llory:", 9) + kSha + "\nbob:" + kSha + "\n";
    std::vector<Diagnostic> diagnostics;
    MalformedLines malformed;
    const HtpasswdIndex index(content, &diagnostics, FileSignature{}, &malformed);
    BOOST_TEST(index.size() == 2u);
    BOOST_TEST(index.find(std::string("ma\0llory", 8)) == nullptr);
    BOOST_TEST(index.find("ma") == nullptr);
    BOOST_TEST(diagnostics.empty());
    BOOST_TEST(malformed.nul == 1u);
    BOOST_TEST(malformed.first_nul == 2u);
    std::string error;
    BOOST_TEST(HtpasswdIndex::from_serialized(index.serialized(), error) != nullptr, error);
}

BOOST_AUTO_TEST_CASE(the_typical_hash_is_the_most_common_usable_format_and_cost)
{
    struct Case {
        const char *rule;
        std::string content;
        HashFormat format;
        std::uint32_t cost;
    };
    const std::string b4 = kBcrypt; // cost 4
    const std::string b5 = "$2y$05$" + kBcrypt.substr(7);
    const std::vector<Case> cases = {
        {"an empty file: htpasswd's default", "", HashFormat::apr1_md5, 0},
        {"one format", "a:" + b4 + "\nb:" + b4 + "\n", HashFormat::bcrypt, 4},
        {"the majority wins", "a:" + b4 + "\nb:" + kSha + "\nc:" + kSha + "\n", HashFormat::sha1, 0},
        {"a tie goes to the costlier", "a:" + b4 + "\nb:" + b5 + "\n", HashFormat::bcrypt, 5},
        {"unusable entries do not count", "a:plain\nb:plain2\nc:" + kDes + "\n", HashFormat::crypt_des, 0},
        {"duplicates do not count", "a:" + b4 + "\na:" + kSha + "\na:" + kSha + "\nb:" + b4 + "\n",
         HashFormat::bcrypt, 4},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const HtpasswdIndex index(c.content);
            BOOST_TEST(std::string(format_name(index.typical_format())) == format_name(c.format));
            BOOST_TEST(index.typical_cost() == c.cost);
            std::string error;
            const auto copy = HtpasswdIndex::from_serialized(index.serialized(), error);
            BOOST_TEST_REQUIRE(copy != nullptr, error);
            BOOST_TEST(std::string(format_name(copy->typical_format())) == format_name(c.format));
            BOOST_TEST(copy->typical_cost() == c.cost);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
