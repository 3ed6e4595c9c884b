// Fuzz target: Basic credentials (RFC 7617) and the strict base64 decoder.
//
// Each input is used three ways:
//  - as a whole header value: the result must agree with a reference parse
//    written from basic_credentials.hpp, and a success must re-encode to the
//    very token it came from (strict base64 has exactly one spelling);
//  - as the decoded pair, sent as "Basic " + base64(input): the parser must
//    return exactly these bytes, split at the first ':';
//  - as a token for decode_base64_strict() with tight output buffers.
// Buffers are heap blocks of the exact size, so ASan sees any write past them.

#include "auth_proxy/scheme/basic/basic_credentials.hpp"

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

using auth_proxy::BasicCredentials;
using auth_proxy::CredentialError;
using auth_proxy::decode_base64_strict;
using auth_proxy::describe;
using auth_proxy::kCredentialBufferSize;
using auth_proxy::kMaxCredentialToken;
using auth_proxy::parse_basic_credentials;

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_control(char c)
{
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

bool has_control(std::string_view s)
{
    for (const char c : s) {
        if (is_control(c)) {
            return true;
        }
    }
    return false;
}

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

/**
 * Reference strict decoder: any 6-bit groups read leniently, then accepted
 * only if the canonical encoding of the result is the input itself.
 */
bool reference_decode(std::string_view in, std::string &plain)
{
    plain.clear();
    if (in.size() % 4 != 0) {
        return false;
    }
    std::size_t pad = 0;
    while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') {
        ++pad;
    }
    std::uint32_t bits = 0;
    int held = 0;
    for (const char c : in.substr(0, in.size() - pad)) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *at = c != '\0' ? std::strchr(alphabet, c) : nullptr;
        if (at == nullptr) {
            return false;
        }
        bits = (bits << 6) | static_cast<std::uint32_t>(at - alphabet);
        held += 6;
        if (held >= 8) {
            held -= 8;
            plain += static_cast<char>((bits >> held) & 0xff);
        }
    }
    return fuzz::base64(plain) == in;
}

/** The token of a header value, or false if the scheme is not Basic. */
bool token_of(std::string_view header, std::string_view &token)
{
    std::size_t pos = 0;
    while (pos < header.size() && is_blank(header[pos])) ++pos;
    std::size_t scheme_end = pos;
    while (scheme_end < header.size() && !is_blank(header[scheme_end])) ++scheme_end;
    if (!equals_ignoring_ascii_case(header.substr(pos, scheme_end - pos), "Basic")) {
        return false;
    }
    pos = scheme_end;
    while (pos < header.size() && is_blank(header[pos])) ++pos;
    std::size_t end = header.size();
    while (end > pos && is_blank(header[end - 1])) --end;
    token = header.substr(pos, end - pos);
    return true;
}

/** Views inside the buffer, NUL-terminated, control-free, user non-empty. */
void check_success(const char *buffer, std::size_t buffer_size, const BasicCredentials &creds,
                   std::string_view decoded)
{
    const char *end = buffer + buffer_size;
    FUZZ_CHECK(creds.user.data() >= buffer && creds.user.data() + creds.user.size() < end, "user outside the buffer");
    FUZZ_CHECK(creds.password.data() >= buffer && creds.password.data() + creds.password.size() < end,
               "password outside the buffer");
    FUZZ_CHECK(creds.user.data()[creds.user.size()] == '\0', "user not NUL-terminated");
    FUZZ_CHECK(creds.password.data()[creds.password.size()] == '\0', "password not NUL-terminated");
    FUZZ_CHECK(!creds.user.empty(), "empty user accepted");
    FUZZ_CHECK(creds.user.find(':') == std::string_view::npos, "user contains ':' " + fuzz::hex(creds.user));
    FUZZ_CHECK(!has_control(creds.user) && !has_control(creds.password),
               "control character in " + fuzz::hex(creds.user) + ":" + fuzz::hex(creds.password));
    const std::string rebuilt = std::string(creds.user) + ":" + std::string(creds.password);
    FUZZ_CHECK(rebuilt == decoded, "pair " + fuzz::hex(rebuilt) + " is not the decoded " + fuzz::hex(decoded));
}

/** Which content errors apply to a decoded token (several may; any of them is a right answer). */
bool content_error_applies(CredentialError error, std::string_view decoded)
{
    const std::size_t colon = decoded.find(':');
    switch (error) {
    case CredentialError::control_char: return has_control(decoded);
    case CredentialError::no_colon: return colon == std::string_view::npos;
    case CredentialError::empty_user: return colon == 0;
    default: return false;
    }
}

bool content_is_acceptable(std::string_view decoded)
{
    const std::size_t colon = decoded.find(':');
    return !has_control(decoded) && colon != std::string_view::npos && colon != 0;
}

/** Parses with an exactly sized heap buffer; returns the error, fills @p creds. */
CredentialError parse(std::string_view header, std::unique_ptr<char[]> &buffer, BasicCredentials &creds)
{
    buffer.reset(new char[kCredentialBufferSize]);
    std::memset(buffer.get(), 'X', kCredentialBufferSize); // a missing terminator shows
    const CredentialError error = parse_basic_credentials(header, buffer.get(), kCredentialBufferSize, creds);
    FUZZ_CHECK(describe(error) != nullptr && *describe(error) != '\0', "no description for an error");
    return error;
}

/** The input as a whole header value, against the reference parse. */
void check_header(std::string_view header)
{
    std::unique_ptr<char[]> buffer;
    BasicCredentials creds;
    const CredentialError error = parse(header, buffer, creds);

    std::string_view token;
    std::string decoded;
    if (!token_of(header, token)) {
        FUZZ_CHECK(error == CredentialError::wrong_scheme, std::string("not Basic, but: ") + describe(error));
        return;
    }
    if (token.empty()) {
        FUZZ_CHECK(error == CredentialError::missing_token, std::string("no token, but: ") + describe(error));
        return;
    }
    if (token.size() > kMaxCredentialToken) {
        FUZZ_CHECK(error == CredentialError::too_long, std::string("long token, but: ") + describe(error));
        return;
    }
    if (!reference_decode(token, decoded)) {
        FUZZ_CHECK(error == CredentialError::bad_base64,
                   "token " + fuzz::hex(token) + " is not strict base64, but: " + describe(error));
        return;
    }
    if (!content_is_acceptable(decoded)) {
        FUZZ_CHECK(content_error_applies(error, decoded),
                   "decoded " + fuzz::hex(decoded) + " refused with the wrong reason: " + describe(error));
        return;
    }
    FUZZ_CHECK(error == CredentialError::none,
               "acceptable token " + fuzz::hex(token) + " refused: " + describe(error));
    check_success(buffer.get(), kCredentialBufferSize, creds, decoded);
    // Strictness: the decoded bytes have exactly one base64 spelling, the token's.
    FUZZ_CHECK(fuzz::base64(std::string(creds.user) + ":" + std::string(creds.password)) == token,
               "decoded pair does not re-encode to the token " + fuzz::hex(token));
}

/** The input as the decoded pair of a well-formed header. */
void check_pair(std::string_view pair)
{
    const std::string token = fuzz::base64(pair);
    std::unique_ptr<char[]> buffer;
    BasicCredentials creds;
    const CredentialError error = parse("Basic " + token, buffer, creds);
    if (token.empty()) {
        FUZZ_CHECK(error == CredentialError::missing_token, std::string("no token, but: ") + describe(error));
        return;
    }
    if (token.size() > kMaxCredentialToken) {
        FUZZ_CHECK(error == CredentialError::too_long, std::string("long token, but: ") + describe(error));
        return;
    }
    if (!content_is_acceptable(pair)) {
        FUZZ_CHECK(content_error_applies(error, pair),
                   "pair " + fuzz::hex(pair) + " refused with the wrong reason: " + describe(error));
        return;
    }
    FUZZ_CHECK(error == CredentialError::none, "pair " + fuzz::hex(pair) + " refused: " + describe(error));
    check_success(buffer.get(), kCredentialBufferSize, creds, pair);

    // A buffer one byte short is refused before anything is written into it.
    std::unique_ptr<char[]> small(new char[kCredentialBufferSize - 1]);
    BasicCredentials ignored;
    FUZZ_CHECK(parse_basic_credentials("Basic " + token, small.get(), kCredentialBufferSize - 1, ignored) ==
                   CredentialError::too_long,
               "a buffer below kCredentialBufferSize was used");
}

/** The input as a token for the decoder alone, with output buffers of exactly cap bytes. */
void check_decoder(std::string_view in)
{
    std::string expected;
    const bool canonical = reference_decode(in, expected);
    const std::size_t needed = in.size() / 4 * 3;
    for (const std::size_t cap : {needed, needed > 0 ? needed - 1 : 0, expected.size()}) {
        std::unique_ptr<char[]> out(new char[cap]);
        const long n = decode_base64_strict(in, out.get(), cap);
        if (n < 0) {
            // Refusing a canonical token is allowed only when the output might not fit.
            FUZZ_CHECK(!canonical || cap < needed, "canonical token " + fuzz::hex(in) + " refused");
            continue;
        }
        FUZZ_CHECK(static_cast<std::size_t>(n) <= cap, "decoder reports more bytes than fit");
        FUZZ_CHECK(canonical, "non-canonical token " + fuzz::hex(in) + " accepted");
        const std::string_view got(out.get(), static_cast<std::size_t>(n));
        FUZZ_CHECK(got == expected, "decoded " + fuzz::hex(got) + ", expected " + fuzz::hex(expected));
        FUZZ_CHECK(fuzz::base64(got) == in, "decoded bytes do not re-encode to " + fuzz::hex(in));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string_view input = fuzz::as_view(data, size);
    check_header(input);
    check_pair(input);
    check_decoder(input);
    return 0;
}
