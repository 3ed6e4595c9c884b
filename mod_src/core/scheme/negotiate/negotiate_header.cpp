#include "auth_proxy/scheme/negotiate/negotiate_header.hpp"

#include "auth_proxy/scheme/basic/basic_credentials.hpp"

#include <strings.h>

namespace auth_proxy {

namespace {

constexpr std::string_view kScheme = "Negotiate";
constexpr const char *kBlanks = " \t";

/** @p text without the spaces and tabs around it. */
std::string_view trim_blanks(std::string_view text) noexcept
{
    const std::size_t first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(kBlanks) - first + 1);
}

std::string encode_base64(std::string_view bytes)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t left = bytes.size() - i;
        std::uint32_t group = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
        if (left > 1) group |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
        if (left > 2) group |= std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
        out += alphabet[(group >> 18) & 63];
        out += alphabet[(group >> 12) & 63];
        out += left > 1 ? alphabet[(group >> 6) & 63] : '=';
        out += left > 2 ? alphabet[group & 63] : '=';
    }
    return out;
}

} // namespace

const char *describe(NegotiateHeaderError error) noexcept
{
    switch (error) {
    case NegotiateHeaderError::none: return "valid";
    case NegotiateHeaderError::wrong_scheme: return "authentication scheme is not Negotiate";
    case NegotiateHeaderError::missing_token: return "no token after the Negotiate scheme";
    case NegotiateHeaderError::too_long: return "Negotiate token is too long";
    case NegotiateHeaderError::bad_base64: return "Negotiate token is not valid base64";
    }
    return "unknown error";
}

NegotiateHeaderError parse_negotiate_header(std::string_view header, std::string &token)
{
    token.clear();
    const std::string_view value = trim_blanks(header);
    const std::string_view scheme = value.substr(0, value.find_first_of(kBlanks));
    if (scheme.size() != kScheme.size() ||
        ::strncasecmp(scheme.data(), kScheme.data(), kScheme.size()) != 0) {
        return NegotiateHeaderError::wrong_scheme;
    }
    const std::string_view encoded = trim_blanks(value.substr(scheme.size()));
    if (encoded.empty()) {
        return NegotiateHeaderError::missing_token;
    }
    if (encoded.size() > kMaxNegotiateToken) {
        return NegotiateHeaderError::too_long;
    }
    token.resize(encoded.size() / 4 * 3);
    const long decoded = decode_base64_strict(encoded, token.data(), token.size());
    if (decoded < 0) {
        token.clear();
        return NegotiateHeaderError::bad_base64;
    }
    token.resize(static_cast<std::size_t>(decoded));
    return NegotiateHeaderError::none;
}

std::string negotiate_challenge(std::string_view output_token)
{
    if (output_token.empty()) {
        return std::string(kScheme);
    }
    return std::string(kScheme) + " " + encode_base64(output_token);
}

} // namespace auth_proxy
