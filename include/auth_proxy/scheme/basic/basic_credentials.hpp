/**
 * @file basic_credentials.hpp
 * Parsing of "Basic" credentials (RFC 7617) from an Authorization or
 * Proxy-Authorization header value.
 */
#pragma once

#include <cstddef>
#include <string_view>

namespace auth_proxy {

/** Why a header value was not usable as Basic credentials. */
enum class CredentialError {
    none,          ///< parsed
    wrong_scheme,  ///< scheme is not "Basic"
    missing_token, ///< "Basic" with nothing after it
    too_long,      ///< token longer than kMaxCredentialToken
    bad_base64,    ///< characters or padding outside strict base64
    no_colon,      ///< decoded text has no ':' between user-id and password
    empty_user,    ///< decoded text starts with ':'
    control_char,  ///< NUL or another control character in the decoded pair
};

/** A short operator-facing description, e.g. "invalid base64". */
const char *describe(CredentialError error) noexcept;

/** Longest base64 token accepted; longer values are refused unread. */
constexpr std::size_t kMaxCredentialToken = 4096;

/** Buffer size that always holds a decoded token plus terminators. */
constexpr std::size_t kCredentialBufferSize = kMaxCredentialToken / 4 * 3 + 2;

/**
 * The parsed pair. Both views point into the caller's buffer and are each
 * followed by a NUL byte, so they can be handed to C APIs as they are.
 */
struct BasicCredentials {
    std::string_view user;
    std::string_view password;
};

/**
 * Decodes strict base64 (RFC 4648 alphabet, mandatory '=' padding, zero
 * trailing bits). Writes at most in.size() / 4 * 3 bytes.
 * @return the decoded length, or -1 if @p in is not strict base64 or does
 *         not fit into @p cap bytes.
 */
long decode_base64_strict(std::string_view in, char *out, std::size_t cap) noexcept;

/**
 * Parses @p header ("Basic <token68>"). The scheme is case-insensitive and
 * separated from the token by one or more spaces or tabs.
 * @param buffer at least kCredentialBufferSize bytes; receives the decoded
 *        pair. Callers should wipe it once done.
 */
CredentialError parse_basic_credentials(std::string_view header, char *buffer,
                                        std::size_t buffer_size,
                                        BasicCredentials &out) noexcept;

} // namespace auth_proxy
