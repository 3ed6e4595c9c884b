#include "auth_proxy/password_hash.hpp"

#include <apr_md5.h> // apr_password_validate

#include <cstring>

namespace auth_proxy {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) noexcept
{
    return s.substr(0, prefix.size()) == prefix;
}

bool is_crypt_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/';
}

bool all_crypt_chars(std::string_view s) noexcept
{
    for (const char c : s) {
        if (!is_crypt_char(c)) {
            return false;
        }
    }
    return true;
}

/** "$2y$10$" + 53 characters of salt and digest. */
bool is_bcrypt(std::string_view s) noexcept
{
    if (s.size() != 60 || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$') {
        return false;
    }
    if (s[2] != 'a' && s[2] != 'b' && s[2] != 'y') {
        return false;
    }
    if (s[4] < '0' || s[4] > '3' || s[5] < '0' || s[5] > '9') {
        return false;
    }
    return all_crypt_chars(s.substr(7));
}

/** "$id$" [ "rounds=N$" ] salt "$" digest, as glibc and APR write them. */
bool is_modular_crypt(std::string_view s, std::string_view id, std::size_t digest_length) noexcept
{
    if (!starts_with(s, id)) {
        return false;
    }
    const std::size_t last = s.rfind('$');
    if (last == std::string_view::npos || last < id.size() || s.size() - last - 1 != digest_length) {
        return false;
    }
    std::string_view middle = s.substr(id.size(), last - id.size());
    if (starts_with(middle, "rounds=")) {
        const std::size_t dollar = middle.find('$');
        if (dollar == std::string_view::npos) {
            return false;
        }
        const std::string_view digits = middle.substr(7, dollar - 7);
        if (digits.empty() || digits.size() > 9) {
            return false;
        }
        for (const char c : digits) {
            if (c < '0' || c > '9') {
                return false;
            }
        }
        middle = middle.substr(dollar + 1);
    }
    if (middle.empty() || middle.size() > 16 || middle.find('$') != std::string_view::npos) {
        return false;
    }
    return all_crypt_chars(middle) && all_crypt_chars(s.substr(last + 1));
}

bool is_sha1(std::string_view s) noexcept
{
    if (!starts_with(s, "{SHA}") || s.size() != 5 + 28 || s.back() != '=') {
        return false;
    }
    for (const char c : s.substr(5, 27)) {
        if (!is_crypt_char(c) && c != '+') {
            return false;
        }
    }
    return true;
}

} // namespace

const char *format_name(HashFormat format) noexcept
{
    switch (format) {
    case HashFormat::unknown: return "unknown";
    case HashFormat::bcrypt: return "bcrypt";
    case HashFormat::apr1_md5: return "APR1-MD5";
    case HashFormat::sha1: return "{SHA}";
    case HashFormat::crypt_des: return "crypt-DES";
    case HashFormat::md5_crypt: return "MD5-crypt";
    case HashFormat::sha256_crypt: return "SHA-256-crypt";
    case HashFormat::sha512_crypt: return "SHA-512-crypt";
    }
    return "unknown";
}

HashFormat classify_hash(std::string_view s) noexcept
{
    if (is_bcrypt(s)) return HashFormat::bcrypt;
    if (is_modular_crypt(s, "$apr1$", 22)) return HashFormat::apr1_md5;
    if (is_sha1(s)) return HashFormat::sha1;
    if (is_modular_crypt(s, "$1$", 22)) return HashFormat::md5_crypt;
    if (is_modular_crypt(s, "$5$", 43)) return HashFormat::sha256_crypt;
    if (is_modular_crypt(s, "$6$", 86)) return HashFormat::sha512_crypt;
    if (s.size() == 13 && all_crypt_chars(s)) return HashFormat::crypt_des;
    return HashFormat::unknown;
}

bool verify_password(const char *password, const char *stored, HashFormat format) noexcept
{
    switch (format) {
    case HashFormat::unknown:
        return false;
    case HashFormat::bcrypt: {
        // $2b$ is the same algorithm as $2y$ (both fixed the 2011 $2x$ bug);
        // APR's bundled bcrypt knows $2y$ and $2a$, so ask it as $2y$.
        char copy[61];
        std::memcpy(copy, stored, sizeof copy);
        if (copy[2] == 'b') {
            copy[2] = 'y';
        }
        return apr_password_validate(password, copy) == APR_SUCCESS;
    }
    default:
        return apr_password_validate(password, stored) == APR_SUCCESS;
    }
}

} // namespace auth_proxy
