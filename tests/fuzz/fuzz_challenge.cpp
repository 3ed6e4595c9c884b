// Fuzz target: the Basic challenge and the realm's quoting.
//
// The input is a realm. quoted_string() must produce an RFC 7230
// quoted-string (DQUOTE *( qdtext / quoted-pair ) DQUOTE, no CTL but HTAB)
// with every '"' and '\' escaped, which unquotes to the realm less its
// control characters; basic_challenge() must frame exactly that. The input
// is also taken as an AuthName that httpd's ap_escape_quotes() stored:
// unescape_quotes() must give back a realm that escapes to the same stored
// value (the escaping merges some realms, so that is all it can promise).

#include "auth_proxy/scheme/challenge.hpp"

#include "fuzz_support.hpp"
#include "../unit/test_support.hpp" // httpd_escape_quotes(): the one model of httpd's escaping

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using auth_proxy::basic_challenge;
using auth_proxy::quoted_string;
using auth_proxy::unescape_quotes;
using test_support::httpd_escape_quotes;

namespace {

bool is_dropped(char c)
{
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

/** Reverses a quoted-string, checking its grammar; false if it breaks a rule. */
bool unquote(std::string_view quoted, std::string &out, std::string &why)
{
    if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') {
        why = "not enclosed in '\"'";
        return false;
    }
    const std::string_view inner = quoted.substr(1, quoted.size() - 2);
    for (std::size_t i = 0; i < inner.size(); ++i) {
        const char c = inner[i];
        if (is_dropped(c)) {
            why = "a control character at " + std::to_string(i);
            return false;
        }
        if (c == '"') {
            why = "an unescaped '\"' at " + std::to_string(i);
            return false;
        }
        if (c == '\\') {
            // Only '"' and '\' need a quoted-pair; anything else escaped is a sign of double escaping.
            if (i + 1 == inner.size() || (inner[i + 1] != '"' && inner[i + 1] != '\\')) {
                why = "a '\\' that escapes neither '\"' nor '\\' at " + std::to_string(i);
                return false;
            }
            out += inner[++i];
            continue;
        }
        out += c;
    }
    return true;
}

void check_quoting(std::string_view realm)
{
    const std::string quoted = quoted_string(realm);
    std::string unquoted, why;
    FUZZ_CHECK(unquote(quoted, unquoted, why), "quoted_string(" + fuzz::hex(realm) + ") has " + why);
    std::string kept;
    for (const char c : realm) {
        if (!is_dropped(c)) {
            kept += c;
        }
    }
    FUZZ_CHECK(unquoted == kept, "quoted_string(" + fuzz::hex(realm) + ") unquotes to " + fuzz::hex(unquoted));
    FUZZ_CHECK(basic_challenge(realm) == "Basic realm=" + quoted + ", charset=\"UTF-8\"",
               "basic_challenge(" + fuzz::hex(realm) + ") is not the quoted realm in its frame");
}

void check_unescaping(std::string_view input)
{
    const std::string unescaped = unescape_quotes(input);
    FUZZ_CHECK(unescaped.size() <= input.size(), "unescape_quotes() made the text longer");

    // The input as the realm an operator typed: what httpd stores comes back
    // to a realm that httpd stores alike.
    const std::string stored = httpd_escape_quotes(input);
    const std::string realm = unescape_quotes(stored);
    FUZZ_CHECK(httpd_escape_quotes(realm) == stored,
               "realm " + fuzz::hex(input) + " stored as " + fuzz::hex(stored) + " reads back as " +
                   fuzz::hex(realm) + ", which is stored as " + fuzz::hex(httpd_escape_quotes(realm)));
    if (input.find('\\') == std::string_view::npos && input.find('\0') == std::string_view::npos) {
        FUZZ_CHECK(realm == input, "realm " + fuzz::hex(input) + " without '\\' reads back as " + fuzz::hex(realm));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string_view input = fuzz::as_view(data, size);
    check_quoting(input);
    check_unescaping(input);
    return 0;
}
