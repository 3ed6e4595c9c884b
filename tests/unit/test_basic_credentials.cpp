// Specification of Basic credential parsing (RFC 7617) and of the strict
// base64 decoder under it. One row per case; each row names the rule it shows.

#include "auth_proxy/scheme/basic/basic_credentials.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using auth_proxy::BasicCredentials;
using auth_proxy::CredentialError;
using auth_proxy::decode_base64_strict;
using auth_proxy::describe;
using auth_proxy::kCredentialBufferSize;
using auth_proxy::kMaxCredentialToken;
using auth_proxy::parse_basic_credentials;

namespace {

/** Plain RFC 4648 base64 with padding, so rows can show the decoded text. */
std::string b64(std::string_view plain)
{
    return test_support::base64(plain);
}

std::string basic(std::string_view plain)
{
    return "Basic " + b64(plain);
}

/** A buffer filled with a non-zero byte, so missing terminators show. */
struct Buffer {
    std::vector<char> bytes = std::vector<char>(kCredentialBufferSize, 'X');
    char *data() { return bytes.data(); }
    std::size_t size() const { return bytes.size(); }
};

struct ParseCase {
    const char *rule;
    std::string header;
    CredentialError error;
    std::string user = {};     // when error == none
    std::string password = {}; // when error == none
};

const std::vector<ParseCase> &parse_cases()
{
    static const std::vector<ParseCase> cases = {
        // The scheme
        {"scheme alone is a missing token", "Basic", CredentialError::missing_token},
        {"scheme and a space is a missing token", "Basic ", CredentialError::missing_token},
        {"scheme and only blanks is a missing token", "Basic \t  \t", CredentialError::missing_token},
        {"empty header is not Basic", "", CredentialError::wrong_scheme},
        {"junk is not Basic", "junk", CredentialError::wrong_scheme},
        {"junk with spaces is not Basic", "this is junk", CredentialError::wrong_scheme},
        {"Bearer is refused", "Bearer x", CredentialError::wrong_scheme},
        {"Digest is refused",
         "Digest username=\"alice\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"0\"",
         CredentialError::wrong_scheme},
        {"scheme glued to the token is not Basic", "Basic" + b64("alice:secret"),
         CredentialError::wrong_scheme},
        {"a longer word starting with Basic is not Basic", "Basically " + b64("alice:secret"),
         CredentialError::wrong_scheme},
        {"scheme is case-insensitive (lower)", "basic YWxpY2U6c2VjcmV0", CredentialError::none, "alice",
         "secret"},
        {"scheme is case-insensitive (upper)", "BASIC YWxpY2U6c2VjcmV0", CredentialError::none, "alice",
         "secret"},
        {"scheme is case-insensitive (mixed)", "bAsIc YWxpY2U6c2VjcmV0", CredentialError::none, "alice",
         "secret"},
        // White space
        {"one space before the token", "Basic YWxpY2U6c2VjcmV0", CredentialError::none, "alice", "secret"},
        {"several spaces before the token", "Basic     YWxpY2U6c2VjcmV0", CredentialError::none, "alice",
         "secret"},
        {"a tab before the token", "Basic\tYWxpY2U6c2VjcmV0", CredentialError::none, "alice", "secret"},
        {"spaces and tabs before the token", "Basic \t \t YWxpY2U6c2VjcmV0", CredentialError::none, "alice",
         "secret"},
        {"surrounding blanks are ignored", " \tBasic YWxpY2U6c2VjcmV0 \t", CredentialError::none, "alice",
         "secret"},
        {"a second word after the token is bad base64", "Basic YWxpY2U6c2VjcmV0 extra",
         CredentialError::bad_base64},
        // The token's base64
        {"characters outside base64 are refused", "Basic !!!!", CredentialError::bad_base64},
        {"URL-safe base64 is refused", "Basic " + std::string("YWxpY2U6c2Vj-_V0"),
         CredentialError::bad_base64},
        {"'=' in the middle is refused", "Basic YWxp=2U6c2VjcmV0", CredentialError::bad_base64},
        {"'=' before the last quantum is refused", "Basic Og==Og==", CredentialError::bad_base64},
        {"three '=' are refused", "Basic A===", CredentialError::bad_base64},
        {"padding only is refused", "Basic ====", CredentialError::bad_base64},
        {"missing padding is refused", "Basic Og", CredentialError::bad_base64},
        {"length not a multiple of 4 is refused", "Basic YWxpY2U6c2VjcmV0Y", CredentialError::bad_base64},
        {"non-zero bits under the padding are refused", "Basic Oh==", CredentialError::bad_base64},
        // The decoded user-id and password
        {"no colon in the decoded text", "Basic Ym9i", CredentialError::no_colon},
        {"a colon alone is an empty user", "Basic Og==", CredentialError::empty_user},
        {"an empty user is refused", "Basic OnNlY3JldA==", CredentialError::empty_user},
        {"an empty password is allowed", "Basic YWxpY2U6", CredentialError::none, "alice", ""},
        {"the user ends at the first colon", basic("alice:pa:ss"), CredentialError::none, "alice", "pa:ss"},
        {"a password of colons", basic("alice:::"), CredentialError::none, "alice", "::"},
        {"spaces inside are kept", basic(" al ice : pw "), CredentialError::none, " al ice ", " pw "},
        {"UTF-8 user and password", basic("j\xc3\xbcrgen:p\xc3\xa4ssw\xc3\xb6rd"), CredentialError::none,
         "j\xc3\xbcrgen", "p\xc3\xa4ssw\xc3\xb6rd"},
        {"4-byte UTF-8 is kept", basic("\xf0\x9f\x94\x91:\xe2\x82\xac"), CredentialError::none,
         "\xf0\x9f\x94\x91", "\xe2\x82\xac"},
        {"NUL in the user is refused", basic(std::string("al\0ice:pw", 9)), CredentialError::control_char},
        {"NUL in the password is refused", basic(std::string("alice:p\0w", 9)),
         CredentialError::control_char},
        {"\\x01 is refused", basic("alice:p\x01w"), CredentialError::control_char},
        {"DEL (\\x7f) is refused", basic("alice:p\x7fw"), CredentialError::control_char},
        {"a tab is refused", basic("alice:p\tw"), CredentialError::control_char},
        {"a newline is refused", basic("alice:pw\n"), CredentialError::control_char},
        {"a CR in the user is refused", basic("al\rice:pw"), CredentialError::control_char},
    };
    return cases;
}

} // namespace

BOOST_AUTO_TEST_SUITE(basic_credentials)

BOOST_AUTO_TEST_CASE(parse_table)
{
    for (const ParseCase &c : parse_cases()) {
        BOOST_TEST_CONTEXT(c.rule << " [" << c.header << "]")
        {
            Buffer buffer;
            BasicCredentials out{"stale", "stale"};
            const CredentialError error =
                parse_basic_credentials(c.header, buffer.data(), buffer.size(), out);
            BOOST_TEST(describe(error) == describe(c.error));
            if (c.error == CredentialError::none) {
                BOOST_TEST(out.user == c.user);
                BOOST_TEST(out.password == c.password);
            }
            else {
                // Nothing from a refused header may look like credentials.
                BOOST_TEST(out.user.empty());
                BOOST_TEST(out.password.empty());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(user_and_password_are_nul_terminated_in_the_buffer)
{
    Buffer buffer;
    BasicCredentials out;
    BOOST_TEST_REQUIRE(describe(parse_basic_credentials(basic("alice:pa:ss"), buffer.data(), buffer.size(),
                                                        out)) == describe(CredentialError::none));
    const char *begin = buffer.data();
    const char *end = begin + buffer.size();
    BOOST_TEST((out.user.data() >= begin && out.user.data() + out.user.size() < end));
    BOOST_TEST((out.password.data() >= begin && out.password.data() + out.password.size() < end));
    BOOST_TEST(out.user.data()[out.user.size()] == '\0');
    BOOST_TEST(out.password.data()[out.password.size()] == '\0');
    BOOST_TEST(std::strcmp(out.user.data(), "alice") == 0);
    BOOST_TEST(std::strcmp(out.password.data(), "pa:ss") == 0);
}

BOOST_AUTO_TEST_CASE(empty_password_is_an_empty_c_string)
{
    Buffer buffer;
    BasicCredentials out;
    BOOST_TEST_REQUIRE(describe(parse_basic_credentials("Basic YWxpY2U6", buffer.data(), buffer.size(),
                                                        out)) == describe(CredentialError::none));
    BOOST_TEST(out.password.size() == 0u);
    BOOST_TEST(out.password.data() != nullptr);
    BOOST_TEST(out.password.data()[0] == '\0');
    BOOST_TEST(std::strcmp(out.user.data(), "alice") == 0);
}

BOOST_AUTO_TEST_CASE(token_of_exactly_the_maximum_length_is_accepted)
{
    // 3072 decoded bytes are exactly 4096 base64 characters, without padding.
    const std::string password(kMaxCredentialToken / 4 * 3 - 2, 'x');
    const std::string token = b64("u:" + password);
    BOOST_TEST_REQUIRE(token.size() == kMaxCredentialToken);

    Buffer buffer;
    BasicCredentials out;
    BOOST_TEST(describe(parse_basic_credentials("Basic " + token, buffer.data(), buffer.size(), out)) ==
               describe(CredentialError::none));
    BOOST_TEST(out.user == "u");
    BOOST_TEST(out.password == password);
    BOOST_TEST(out.password.data()[out.password.size()] == '\0');
}

BOOST_AUTO_TEST_CASE(longer_tokens_are_refused_as_too_long)
{
    struct Row {
        const char *rule;
        std::string token;
    };
    const std::vector<Row> rows = {
        {"valid base64, one quantum over the limit",
         b64("u:" + std::string(kMaxCredentialToken / 4 * 3 + 1, 'x'))},
        {"one character over the limit, refused before decoding", std::string(kMaxCredentialToken + 1, 'A')},
        {"far over the limit", std::string(1 << 20, 'A')},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST_REQUIRE(row.token.size() > kMaxCredentialToken);
            Buffer buffer;
            BasicCredentials out;
            BOOST_TEST(describe(parse_basic_credentials("Basic " + row.token, buffer.data(), buffer.size(),
                                                        out)) == describe(CredentialError::too_long));
            BOOST_TEST(out.user.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_buffer_smaller_than_kCredentialBufferSize_is_refused)
{
    std::vector<char> small(kCredentialBufferSize - 1);
    BasicCredentials out;
    const CredentialError error =
        parse_basic_credentials("Basic YWxpY2U6c2VjcmV0", small.data(), small.size(), out);
    BOOST_TEST(describe(error) != describe(CredentialError::none));
    BOOST_TEST(out.user.empty());
}

BOOST_AUTO_TEST_CASE(every_error_has_its_own_description)
{
    const CredentialError all[] = {
        CredentialError::none,       CredentialError::wrong_scheme, CredentialError::missing_token,
        CredentialError::too_long,   CredentialError::bad_base64,   CredentialError::no_colon,
        CredentialError::empty_user, CredentialError::control_char,
    };
    std::set<std::string> seen;
    for (const CredentialError e : all) {
        const char *text = describe(e);
        BOOST_TEST_REQUIRE(text != nullptr);
        BOOST_TEST(std::strlen(text) > 0u);
        seen.insert(text);
    }
    BOOST_TEST(seen.size() == std::size(all));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(base64_strict)

namespace {

struct DecodeCase {
    const char *rule;
    std::string in;
    std::optional<std::string> out; // nullopt: refused (-1)
};

} // namespace

BOOST_AUTO_TEST_CASE(decode_table)
{
    const std::vector<DecodeCase> cases = {
        {"empty input decodes to nothing", "", std::string()},
        {"a full quantum", "TWFu", std::string("Man")},
        {"one '=' leaves two bytes", "TWE=", std::string("Ma")},
        {"two '=' leave one byte", "TQ==", std::string("M")},
        {"several quanta", "YWxpY2U6c2VjcmV0", std::string("alice:secret")},
        {"'+' and '/' are in the alphabet", "+/+/", std::string("\xfb\xff\xbf")},
        {"bytes with the high bit set", b64("\xc3\xa9\xff"), std::string("\xc3\xa9\xff")},
        {"NUL bytes are decoded, not refused here", "AAAA", std::string(3, '\0')},
        {"length 1 is refused", "T", std::nullopt},
        {"length 3 (missing padding) is refused", "TWE", std::nullopt},
        {"length 2 (missing padding) is refused", "TQ", std::nullopt},
        {"a lone '=' short of a quantum is refused", "TQ=", std::nullopt},
        {"'=' in the first place is refused", "=AAA", std::nullopt},
        {"'=' in the second place is refused", "A===", std::nullopt},
        {"only padding is refused", "====", std::nullopt},
        {"data after '=' is refused", "TW=u", std::nullopt},
        {"padding before the last quantum is refused", "TQ==TWFu", std::nullopt},
        {"non-zero bits under one '=' are refused", "TWF=", std::nullopt},
        {"non-zero bits under two '=' are refused", "TR==", std::nullopt},
        {"'-' (URL-safe) is refused", "TWF-", std::nullopt},
        {"'_' (URL-safe) is refused", "TWF_", std::nullopt},
        {"a space is refused", "TW u", std::nullopt},
        {"a newline is refused", "TWE\n", std::nullopt},
        {"a NUL is refused", std::string("TW\0u", 4), std::nullopt},
        {"a non-ASCII byte is refused", "\xc3\xa9\x41\x41", std::nullopt},
    };
    for (const DecodeCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule << " [" << c.in << "]")
        {
            char out[64];
            std::memset(out, 'X', sizeof out);
            const long n = decode_base64_strict(c.in, out, sizeof out);
            if (c.out) {
                BOOST_TEST_REQUIRE(n == static_cast<long>(c.out->size()));
                BOOST_TEST(std::string(out, static_cast<std::size_t>(n)) == *c.out);
            }
            else {
                BOOST_TEST(n == -1);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(output_must_fit_the_capacity)
{
    char out[3] = {'X', 'X', 'X'};
    BOOST_TEST(decode_base64_strict("TWFu", out, 3) == 3);
    BOOST_TEST(std::string(out, 3) == "Man");
    BOOST_TEST(decode_base64_strict("TWFu", out, 2) == -1);
    BOOST_TEST(decode_base64_strict("TWFuTWFu", out, 3) == -1);
}

BOOST_AUTO_TEST_CASE(never_writes_past_the_capacity)
{
    char out[8];
    std::memset(out, 'X', sizeof out);
    BOOST_TEST(decode_base64_strict("TWFuTWFu", out, 5) == -1);
    BOOST_TEST(decode_base64_strict("TWFu", out, 3) == 3);
    for (std::size_t i = 3; i < sizeof out; ++i) {
        BOOST_TEST(out[i] == 'X');
    }
}

BOOST_AUTO_TEST_SUITE_END()
