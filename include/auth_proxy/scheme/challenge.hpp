/**
 * @file challenge.hpp
 * The Basic challenge sent in Proxy-Authenticate / WWW-Authenticate.
 */
#pragma once

#include <string>
#include <string_view>

namespace auth_proxy {

/**
 * Renders @p text as an RFC 7230 quoted-string: '"' and '\' are escaped,
 * control characters other than HTAB (never valid in a header) are dropped.
 */
std::string quoted_string(std::string_view text);

/**
 * Undoes httpd's ap_escape_quotes(), which mod_authn_core applies to AuthName:
 * it puts a '\' before every '"' and keeps any "\x" pair as it is. Done
 * before quoted_string(), so every character is escaped exactly once. (A
 * '\"' typed into the realm itself reads back as '"': the escaping made them
 * equal.)
 */
std::string unescape_quotes(std::string_view escaped);

/** `Basic realm="<realm>", charset="UTF-8"` (RFC 7617 section 2.1). */
std::string basic_challenge(std::string_view realm);

} // namespace auth_proxy
