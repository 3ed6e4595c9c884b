#include "auth_proxy/scheme/basic/basic_credentials.hpp"

#include "auth_proxy/scheme/scheme.hpp"

#include <array>
#include <cstring>

namespace auth_proxy {

namespace {

constexpr std::uint8_t kInvalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_decode_table()
{
    std::array<std::uint8_t, 256> table{};
    for (auto &v : table) {
        v = kInvalid;
    }
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::uint8_t i = 0; i < 64; ++i) {
        table[static_cast<unsigned char>(alphabet[i])] = i;
    }
    return table;
}

constexpr auto kDecode = make_decode_table();

bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

} // namespace

const char *describe(CredentialError error) noexcept
{
    switch (error) {
    case CredentialError::none: return "valid";
    case CredentialError::wrong_scheme: return "authentication scheme is not Basic";
    case CredentialError::missing_token: return "no credentials after the Basic scheme";
    case CredentialError::too_long: return "credentials are too long";
    case CredentialError::bad_base64: return "credentials are not valid base64";
    case CredentialError::no_colon: return "decoded credentials have no ':' separator";
    case CredentialError::empty_user: return "decoded credentials have an empty user-id";
    case CredentialError::control_char: return "decoded credentials contain a control character";
    }
    return "unknown error";
}

long decode_base64_strict(std::string_view in, char *out, std::size_t cap) noexcept
{
    if (in.size() % 4 != 0) {
        return -1;
    }
    const std::size_t max_out = in.size() / 4 * 3;
    if (max_out > cap) {
        return -1;
    }
    std::size_t n = 0;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        std::uint8_t v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            const char c = in[i + j];
            if (c == '=') {
                // Padding only in the last quantum, only in its last two places,
                // and nothing but padding after it.
                if (!last || j < 2) {
                    return -1;
                }
                ++pad;
                v[j] = 0;
                continue;
            }
            if (pad > 0) {
                return -1;
            }
            v[j] = kDecode[static_cast<unsigned char>(c)];
            if (v[j] == kInvalid) {
                return -1;
            }
        }
        const std::uint32_t bits = (std::uint32_t{v[0]} << 18) | (std::uint32_t{v[1]} << 12) |
                                   (std::uint32_t{v[2]} << 6) | std::uint32_t{v[3]};
        // Bits that padding leaves over must be zero in canonical base64.
        if ((pad == 1 && (bits & 0xff) != 0) || (pad == 2 && (bits & 0xffff) != 0)) {
            return -1;
        }
        out[n++] = static_cast<char>((bits >> 16) & 0xff);
        if (pad < 2) out[n++] = static_cast<char>((bits >> 8) & 0xff);
        if (pad < 1) out[n++] = static_cast<char>(bits & 0xff);
    }
    return static_cast<long>(n);
}

CredentialError parse_basic_credentials(std::string_view header, char *buffer,
                                        std::size_t buffer_size,
                                        BasicCredentials &out) noexcept
{
    out = BasicCredentials{};
    const std::string_view scheme = scheme_token(header);
    if (!same_token(scheme, "Basic")) {
        return CredentialError::wrong_scheme;
    }
    std::size_t pos = static_cast<std::size_t>(scheme.data() - header.data()) + scheme.size();
    while (pos < header.size() && is_blank(header[pos])) {
        ++pos;
    }
    std::size_t end = header.size();
    while (end > pos && is_blank(header[end - 1])) {
        --end;
    }
    const std::string_view token = header.substr(pos, end - pos);
    if (token.empty()) {
        return CredentialError::missing_token;
    }
    if (token.size() > kMaxCredentialToken) {
        return CredentialError::too_long;
    }
    if (buffer_size < kCredentialBufferSize) {
        return CredentialError::too_long;
    }
    const long decoded = decode_base64_strict(token, buffer, buffer_size - 1);
    if (decoded < 0) {
        return CredentialError::bad_base64;
    }
    const auto length = static_cast<std::size_t>(decoded);
    for (std::size_t i = 0; i < length; ++i) {
        const auto c = static_cast<unsigned char>(buffer[i]);
        if (c < 0x20 || c == 0x7f) {
            return CredentialError::control_char;
        }
    }
    char *colon = static_cast<char *>(std::memchr(buffer, ':', length));
    if (colon == nullptr) {
        return CredentialError::no_colon;
    }
    if (colon == buffer) {
        return CredentialError::empty_user;
    }
    // Terminate both halves in place so they can go to C APIs unchanged.
    *colon = '\0';
    buffer[length] = '\0';
    out.user = std::string_view(buffer, static_cast<std::size_t>(colon - buffer));
    out.password = std::string_view(colon + 1, length - out.user.size() - 1);
    return CredentialError::none;
}

} // namespace auth_proxy
