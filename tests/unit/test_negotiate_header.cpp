// Specification of the Negotiate header values (RFC 4559): the token in
// Proxy-Authorization, and the challenge in Proxy-Authenticate.

#include "auth_proxy/scheme/negotiate/negotiate_header.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <vector>

using auth_proxy::describe;
using auth_proxy::kMaxNegotiateToken;
using auth_proxy::negotiate_challenge;
using auth_proxy::NegotiateHeaderError;
using auth_proxy::parse_negotiate_header;

namespace {

// The first bytes of a real SPNEGO NegTokenInit: [APPLICATION 0], the SPNEGO OID.
const std::string kSpnegoStart("\x60\x82\x02\x9a\x06\x06\x2b\x06\x01\x05\x05\x02", 12);

struct ParseCase {
    const char *rule;
    std::string header;
    NegotiateHeaderError error;
    std::string token = {}; // when error == none
};

const std::vector<ParseCase> &parse_cases()
{
    using E = NegotiateHeaderError;
    const std::string spnego = test_support::base64(kSpnegoStart);
    static const std::vector<ParseCase> cases = {
        // The scheme
        {"a SPNEGO token", "Negotiate " + spnego, E::none, kSpnegoStart},
        {"scheme is case-insensitive (lower)", "negotiate " + spnego, E::none, kSpnegoStart},
        {"scheme is case-insensitive (upper)", "NEGOTIATE " + spnego, E::none, kSpnegoStart},
        {"scheme alone is a missing token (a client's first answer is never empty)", "Negotiate",
         E::missing_token},
        {"scheme and blanks are a missing token", "Negotiate \t ", E::missing_token},
        {"empty header is not Negotiate", "", E::wrong_scheme},
        {"Basic is not Negotiate", "Basic YWxpY2U6c2VjcmV0", E::wrong_scheme},
        {"NTLM is not Negotiate", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
         E::wrong_scheme},
        {"Kerberos (the scheme word some clients once used) is not Negotiate", "Kerberos " + spnego,
         E::wrong_scheme},
        {"scheme glued to the token is not Negotiate", "Negotiate" + spnego, E::wrong_scheme},
        {"a longer word starting with Negotiate is not Negotiate", "Negotiated " + spnego, E::wrong_scheme},
        // White space
        {"a tab before the token", "Negotiate\t" + spnego, E::none, kSpnegoStart},
        {"several blanks before the token", "Negotiate  \t  " + spnego, E::none, kSpnegoStart},
        {"blanks around the value are ignored", " \tNegotiate " + spnego + " \t", E::none, kSpnegoStart},
        {"a second word after the token is bad base64", "Negotiate " + spnego + " extra", E::bad_base64},
        // The token's base64
        {"characters outside base64 are refused", "Negotiate !!!!", E::bad_base64},
        {"URL-safe base64 is refused", "Negotiate YIIC-_==", E::bad_base64},
        {"missing padding is refused", "Negotiate YIICmg", E::bad_base64},
        {"a length not a multiple of 4 is refused", "Negotiate YIICm", E::bad_base64},
        {"non-zero bits under the padding are refused", "Negotiate YB==", E::bad_base64},
        {"padding in the middle is refused", "Negotiate YA==YIIC", E::bad_base64},
        {"NUL bytes are kept: tokens are binary", "Negotiate AAAA", E::none, std::string(3, '\0')},
    };
    return cases;
}

} // namespace

BOOST_AUTO_TEST_SUITE(negotiate_header)

BOOST_AUTO_TEST_CASE(parse_table)
{
    for (const ParseCase &c : parse_cases()) {
        BOOST_TEST_CONTEXT(c.rule << " [" << c.header << "]")
        {
            std::string token = "stale";
            const NegotiateHeaderError error = parse_negotiate_header(c.header, token);
            BOOST_TEST(describe(error) == describe(c.error));
            // A refused header leaves nothing that could look like a token.
            BOOST_TEST(token == (c.error == NegotiateHeaderError::none ? c.token : std::string()));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_token_of_exactly_the_maximum_length_is_accepted)
{
    const std::string bytes(kMaxNegotiateToken / 4 * 3, '\xa5');
    const std::string encoded = test_support::base64(bytes);
    BOOST_TEST_REQUIRE(encoded.size() == kMaxNegotiateToken);
    std::string token;
    BOOST_TEST(describe(parse_negotiate_header("Negotiate " + encoded, token)) ==
               describe(NegotiateHeaderError::none));
    BOOST_TEST(token == bytes);
}

BOOST_AUTO_TEST_CASE(a_windows_max_token_size_ticket_fits)
{
    // Windows' default MaxTokenSize: the largest Kerberos token its clients send.
    const std::string bytes(48000, 'k');
    std::string token;
    BOOST_TEST(describe(parse_negotiate_header("Negotiate " + test_support::base64(bytes), token)) ==
               describe(NegotiateHeaderError::none));
    BOOST_TEST(token.size() == bytes.size());
}

BOOST_AUTO_TEST_CASE(longer_tokens_are_refused_unread)
{
    struct Row {
        const char *rule;
        std::string encoded;
    };
    const std::vector<Row> rows = {
        {"valid base64, one quantum over",
         test_support::base64(std::string(kMaxNegotiateToken / 4 * 3 + 1, 'x'))},
        {"one character over, not even base64", std::string(kMaxNegotiateToken + 1, '!')},
        {"a megabyte", std::string(1 << 20, 'A')},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST_REQUIRE(row.encoded.size() > kMaxNegotiateToken);
            std::string token = "stale";
            BOOST_TEST(describe(parse_negotiate_header("Negotiate " + row.encoded, token)) ==
                       describe(NegotiateHeaderError::too_long));
            BOOST_TEST(token.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(challenge_table)
{
    struct Row {
        const char *rule;
        std::string output_token;
        std::string challenge;
    };
    const std::vector<Row> rows = {
        {"no output token: the bare scheme, as a first challenge", "", "Negotiate"},
        {"an output token follows in base64", std::string("\xa1\x07\x30\x05\xa0\x03\x0a\x01\x00", 9),
         "Negotiate oQcwBaADCgEA"},
        {"one byte is padded", "\xff", "Negotiate /w=="},
        {"two bytes are padded", std::string("\x00\x01", 2), "Negotiate AAE="},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST(negotiate_challenge(row.output_token) == row.challenge);
        }
    }
}

BOOST_AUTO_TEST_CASE(challenge_and_parse_round_trip)
{
    for (std::size_t length : {1u, 2u, 3u, 4u, 100u, 12000u}) {
        std::string bytes;
        for (std::size_t i = 0; i < length; ++i) {
            bytes += static_cast<char>(i * 37 + 11);
        }
        std::string token;
        BOOST_TEST_REQUIRE(describe(parse_negotiate_header(negotiate_challenge(bytes), token)) ==
                           describe(NegotiateHeaderError::none));
        BOOST_TEST(token == bytes);
    }
}

BOOST_AUTO_TEST_CASE(every_error_has_its_own_description)
{
    using E = NegotiateHeaderError;
    const E all[] = {E::none, E::wrong_scheme, E::missing_token, E::too_long, E::bad_base64};
    std::set<std::string> seen;
    for (const E e : all) {
        seen.insert(describe(e));
    }
    BOOST_TEST(seen.size() == std::size(all));
}

BOOST_AUTO_TEST_SUITE_END()
