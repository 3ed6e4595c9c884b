#include "auth_proxy/scheme/challenge.hpp"

namespace auth_proxy {

std::string quoted_string(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        }
        else if ((u < 0x20 && c != '\t') || u == 0x7f) {
            continue; // cannot appear in a header field value
        }
        else {
            out.push_back(c);
        }
    }
    out.push_back('"');
    return out;
}

std::string unescape_quotes(std::string_view escaped)
{
    std::string out;
    out.reserve(escaped.size());
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        const bool pair = escaped[i] == '\\' && i + 1 < escaped.size();
        if (pair && escaped[i + 1] == '"') {
            ++i; // the '\' ap_escape_quotes() added
        }
        else if (pair) {
            out.push_back(escaped[i++]); // a "\x" pair it kept
        }
        out.push_back(escaped[i]);
    }
    return out;
}

std::string basic_challenge(std::string_view realm)
{
    return "Basic realm=" + quoted_string(realm) + ", charset=\"UTF-8\"";
}

} // namespace auth_proxy
