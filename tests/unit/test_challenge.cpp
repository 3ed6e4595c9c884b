// Specification of the Basic challenge: the realm as an RFC 7230
// quoted-string, and the exact header value a client receives.

#include "auth_proxy/scheme/challenge.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using auth_proxy::basic_challenge;
using auth_proxy::quoted_string;

BOOST_AUTO_TEST_SUITE(challenge)

namespace {

struct ChallengeCase {
    const char *rule;
    std::string realm;
    std::string quoted;    // quoted_string(realm)
    std::string challenge; // basic_challenge(realm)
};

} // namespace

BOOST_AUTO_TEST_CASE(challenge_table)
{
    const std::vector<ChallengeCase> cases = {
        {"a plain realm is quoted as it is", "Login Authentication", R"("Login Authentication")",
         R"(Basic realm="Login Authentication", charset="UTF-8")"},
        {"an empty realm is an empty quoted-string", "", R"("")", R"(Basic realm="", charset="UTF-8")"},
        {"'\"' is escaped", R"(say "hi")", R"("say \"hi\"")", R"(Basic realm="say \"hi\"", charset="UTF-8")"},
        {"'\\' is escaped", R"(C:\proxy)", R"("C:\\proxy")", R"(Basic realm="C:\\proxy", charset="UTF-8")"},
        {"'\\' and '\"' are both escaped, in order", R"(a\"b)", R"("a\\\"b")",
         R"(Basic realm="a\\\"b", charset="UTF-8")"},
        {"a realm of only a quote", R"(")", R"("\"")", R"(Basic realm="\"", charset="UTF-8")"},
        {"UTF-8 is passed through unchanged", "Z\xc3\xbcrich B\xc3\xbcro \xe2\x82\xac",
         "\"Z\xc3\xbcrich B\xc3\xbcro \xe2\x82\xac\"",
         "Basic realm=\"Z\xc3\xbcrich B\xc3\xbcro \xe2\x82\xac\", charset=\"UTF-8\""},
        {"CR and LF are dropped (no header injection)", "a\r\nSet-Cookie: x=1", R"("aSet-Cookie: x=1")",
         R"(Basic realm="aSet-Cookie: x=1", charset="UTF-8")"},
        {"other control characters are dropped", "a\001b\037c\177d", R"("abcd")",
         R"(Basic realm="abcd", charset="UTF-8")"},
        {"NUL is dropped", std::string("a\0b", 3), R"("ab")", R"(Basic realm="ab", charset="UTF-8")"},
        {"a realm of only control characters becomes empty", "\r\n\x01", R"("")",
         R"(Basic realm="", charset="UTF-8")"},
        {"a tab is kept", "a\tb", "\"a\tb\"", "Basic realm=\"a\tb\", charset=\"UTF-8\""},
        {"commas and '=' need no escaping", "a, b=c", R"("a, b=c")",
         R"(Basic realm="a, b=c", charset="UTF-8")"},
    };
    for (const ChallengeCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            BOOST_TEST(quoted_string(c.realm) == c.quoted);
            BOOST_TEST(basic_challenge(c.realm) == c.challenge);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(httpd_auth_name)

struct UnescapeCase {
    const char *escaped; // as ap_auth_name() returns it
    const char *realm;   // what the operator meant
};

BOOST_AUTO_TEST_CASE(unescape_quotes_undoes_ap_escape_quotes_once)
{
    const UnescapeCase cases[] = {
        {"Login Authentication", "Login Authentication"},
        {R"(Corp \"West\")", R"(Corp "West")"},
        {R"(back\\slash)", R"(back\\slash)"}, // "\x" pairs are kept by httpd, so kept here
        {R"(C:\dir)", R"(C:\dir)"},
        {R"(trailing\)", R"(trailing\)"},
        {"", ""},
        {"\xc3\xbc", "\xc3\xbc"},
    };
    for (const UnescapeCase &c : cases) {
        BOOST_TEST_CONTEXT(c.escaped)
        {
            BOOST_TEST(auth_proxy::unescape_quotes(c.escaped) == c.realm);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_realm_with_quotes_goes_out_escaped_exactly_once)
{
    BOOST_TEST(auth_proxy::basic_challenge(auth_proxy::unescape_quotes(R"(Corp \"West\")")) ==
               R"(Basic realm="Corp \"West\"", charset="UTF-8")");
}

BOOST_AUTO_TEST_SUITE_END()
