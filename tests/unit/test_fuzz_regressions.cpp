// Inputs the fuzz targets (tests/fuzz) found, minimized: one row each, with
// the property it broke. A row stays after its fix, so the bug stays fixed.

#include "auth_proxy/scheme/challenge.hpp"
#include "auth_proxy/store/htpasswd_index.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

using auth_proxy::HtpasswdIndex;
using auth_proxy::unescape_quotes;
using namespace std::string_literals;
using test_support::httpd_escape_quotes;

BOOST_AUTO_TEST_SUITE(fuzz_regressions)

namespace {

struct RoundTripCase {
    const char *rule;
    std::string content;             // an htpasswd file
    std::vector<std::string> users;  // looked up in both indexes
};

struct RealmCase {
    const char *rule;
    std::string realm; // as the operator typed it (raw, after config parsing)
};

struct ForgedIndexCase {
    const char *rule;
    std::string content; // an htpasswd file, indexed, then serialized
    std::string from;    // bytes of the serialized index replaced ...
    std::string to;      // ... by these (same length), as an in-place edit of the index file would
    std::size_t users;   // distinct users the edited index holds
};

} // namespace

// fuzz_htpasswd_index: serialized() bytes must be accepted by from_serialized()
// (the path of every index file through map()) and answer alike.
BOOST_AUTO_TEST_CASE(a_built_index_reads_back)
{
    const std::vector<RoundTripCase> cases = {
        {"a user name that is a NUL byte (hex 003a)", "\0:"s, {"\0"s}},
        {"a NUL byte inside a user name",
         "alice:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\na\0b:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\n"s,
         {"alice", "a\0b"s, "a"}},
    };
    for (const RoundTripCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const HtpasswdIndex built(c.content);
            std::string error;
            const std::shared_ptr<const HtpasswdIndex> read = HtpasswdIndex::from_serialized(built.serialized(), error);
            BOOST_TEST(read != nullptr, "from_serialized() refused a built index: " << error);
            if (read == nullptr) {
                continue;
            }
            BOOST_TEST(read->size() == built.size());
            for (const std::string &user : c.users) {
                const HtpasswdIndex::Found a = built.find(user), b = read->find(user);
                BOOST_TEST((a != nullptr) == (b != nullptr));
                if (a != nullptr && b != nullptr) {
                    BOOST_TEST(std::string(a->user, a->user_length) == std::string(b->user, b->user_length));
                    BOOST_TEST(std::string(a->hash) == std::string(b->hash));
                }
            }
        }
    }
}

// fuzz_challenge: unescape_quotes() must give back a realm that httpd stores
// as the value it was given (ap_escape_quotes() merges some realms, so no
// more can be asked).
BOOST_AUTO_TEST_CASE(a_stored_realm_reads_back_to_a_realm_stored_alike)
{
    const std::vector<RealmCase> cases = {
        // The fuzzer's model of ap_escape_quotes() once copied a third
        // character after a kept pair; httpd does not. With httpd's own
        // steps these realms round-trip, and the rows stay to show it.
        {"two kept \\\" pairs (realm hex 5c225c22)", R"(\"\")"},
        {"kept pairs, then a quote (realm hex 435c5c095c3a5c5c5c22)", "C\\\\\t\\:\\\\\\\""},
    };
    for (const RealmCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const std::string stored = httpd_escape_quotes(c.realm);
            const std::string realm = unescape_quotes(stored);
            BOOST_TEST(httpd_escape_quotes(realm) == stored, "stored '" << stored << "' reads back as '" << realm << "'");
        }
    }
}

// fuzz_index_validation: an index file that is not what a build writes is
// refused, or at least counts the users it holds (size() is logged, and
// tells an emptied file). The header check does not cover the text.
BOOST_AUTO_TEST_CASE(a_forged_index_counts_its_users)
{
    const std::vector<ForgedIndexCase> cases = {
        {"a user renamed into an earlier one leaves a slot no lookup reaches",
         "alice:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\nalicf:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\n", "alicf", "alice",
         1},
    };
    for (const ForgedIndexCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const HtpasswdIndex built(c.content);
            std::string bytes(built.serialized());
            const std::size_t at = bytes.find(c.from);
            BOOST_TEST_REQUIRE(at != std::string::npos);
            bytes.replace(at, c.from.size(), c.to);
            std::string error;
            const std::shared_ptr<const HtpasswdIndex> read = HtpasswdIndex::from_serialized(bytes, error);
            if (read != nullptr) {
                BOOST_TEST(read->size() == c.users);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
