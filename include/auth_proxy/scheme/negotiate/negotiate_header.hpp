/**
 * @file negotiate_header.hpp
 * The "Negotiate" scheme's header values (RFC 4559): the token a client
 * sends in Proxy-Authorization, and the challenge or reply the proxy sends
 * in Proxy-Authenticate.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace auth_proxy {

/** Why a header value did not yield a Negotiate token. */
enum class NegotiateHeaderError {
    none,          ///< parsed
    wrong_scheme,  ///< scheme is not "Negotiate"
    missing_token, ///< "Negotiate" with nothing after it
    too_long,      ///< token longer than kMaxNegotiateToken
    bad_base64,    ///< characters or padding outside strict base64
};

/** A short operator-facing description, e.g. "token is not valid base64". */
const char *describe(NegotiateHeaderError error) noexcept;

/**
 * Longest base64 token accepted, in characters. A Kerberos token carries
 * the client's ticket, whose PAC grows with the user's groups: Windows
 * allows tickets up to its MaxTokenSize, 48,000 bytes by default, which is
 * 64,000 base64 characters. Longer values are refused unread. (httpd's own
 * LimitRequestFieldSize, 8190 by default, is usually the tighter limit.)
 */
constexpr std::size_t kMaxNegotiateToken = 64 * 1024;

/**
 * Parses @p header ("Negotiate <base64>"). The scheme is case-insensitive
 * and separated from the token by one or more spaces or tabs; blanks around
 * the value are ignored. The token must be strict base64 (RFC 4648, with
 * padding).
 * @param token receives the decoded bytes; emptied on any error.
 */
NegotiateHeaderError parse_negotiate_header(std::string_view header, std::string &token);

/**
 * The Proxy-Authenticate value: "Negotiate" alone as a first challenge, or
 * "Negotiate <base64 of @p output_token>" when the acceptor has a token to
 * send back (the SPNEGO accept-completed reply, or a KRB-ERROR).
 */
std::string negotiate_challenge(std::string_view output_token = {});

} // namespace auth_proxy
