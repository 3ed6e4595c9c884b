#include "auth_proxy/store/htpasswd_parser.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace auth_proxy {

namespace {

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

} // namespace

PageVector<HtpasswdLine> parse_htpasswd(std::string_view content, std::vector<Diagnostic> *diagnostics)
{
    if (content.size() >= std::numeric_limits<std::uint32_t>::max() - 8) {
        throw std::length_error("user file larger than 4 GiB");
    }
    auto note = [&](std::size_t line, std::string message) {
        if (diagnostics != nullptr) {
            diagnostics->push_back(Diagnostic{line, true, std::move(message)});
        }
    };
    PageVector<HtpasswdLine> lines;
    lines.reserve(content.size() / 48);
    const char *const base = content.data();
    const std::size_t total = content.size();
    std::size_t line_no = 0;
    for (std::size_t start = 0; start < total;) {
        ++line_no;
        const char *nl = static_cast<const char *>(std::memchr(base + start, '\n', total - start));
        const std::size_t line_end = nl != nullptr ? static_cast<std::size_t>(nl - base) : total;
        std::size_t b = start, e = line_end;
        start = line_end + 1;
        while (b < e && is_space(base[b])) ++b;
        while (e > b && is_space(base[e - 1])) --e;
        if (b == e || base[b] == '#') {
            continue;
        }
        if (std::memchr(base + b, '\0', e - b) != nullptr) {
            note(line_no, "line contains a NUL byte; ignored");
            continue;
        }
        const char *colon = static_cast<const char *>(std::memchr(base + b, ':', e - b));
        if (colon == nullptr) {
            note(line_no, "line has no ':' between user and password hash; ignored");
            continue;
        }
        const std::size_t user_length = static_cast<std::size_t>(colon - (base + b));
        if (user_length == 0) {
            note(line_no, "line has an empty user name; ignored");
            continue;
        }
        const std::size_t hash_begin = b + user_length + 1;
        const char *next = static_cast<const char *>(std::memchr(base + hash_begin, ':', e - hash_begin));
        const std::size_t hash_end = next != nullptr ? static_cast<std::size_t>(next - base) : e;
        lines.push_back(HtpasswdLine{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(user_length),
                                     static_cast<std::uint32_t>(hash_begin),
                                     static_cast<std::uint32_t>(hash_end - hash_begin), line_no});
    }
    return lines;
}

} // namespace auth_proxy
