#include "auth_proxy/scheme/scheme.hpp"

namespace auth_proxy {

namespace {

bool is_blank(char c) noexcept
{
    return c == ' ' || c == '\t';
}

char lower(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

} // namespace

std::string_view scheme_token(std::string_view header) noexcept
{
    std::size_t start = 0;
    while (start < header.size() && is_blank(header[start])) {
        ++start;
    }
    std::size_t end = start;
    while (end < header.size() && !is_blank(header[end])) {
        ++end;
    }
    return header.substr(start, end - start);
}

bool same_token(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

void SchemeSet::add(const Scheme &scheme) noexcept
{
    for (const Scheme *s : *this) {
        if (s == &scheme) {
            return;
        }
    }
    if (count_ < kMax) {
        schemes_[count_++] = &scheme;
    }
}

const Scheme *SchemeSet::named_by(std::string_view header) const noexcept
{
    const std::string_view token = scheme_token(header);
    for (const Scheme *s : *this) {
        if (same_token(token, s->token())) {
            return s;
        }
    }
    return nullptr;
}

} // namespace auth_proxy
