#include "auth_proxy/verify/password_hash.hpp"

#include <apr_md5.h> // apr_password_validate

#include <algorithm>
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

std::string_view significant_password_bytes(std::string_view password, HashFormat format) noexcept
{
    switch (format) {
    case HashFormat::bcrypt: return password.substr(0, kBcryptPasswordBytes);
    case HashFormat::crypt_des: return password.substr(0, kCryptDesPasswordBytes);
    default: return password;
    }
}

std::uint32_t hash_cost(std::string_view s, HashFormat format) noexcept
{
    switch (format) {
    case HashFormat::bcrypt:
        return static_cast<std::uint32_t>((s[4] - '0') * 10 + (s[5] - '0'));
    case HashFormat::sha256_crypt:
    case HashFormat::sha512_crypt: {
        // classify_hash() admitted at most 9 digits after "$5$rounds=".
        constexpr std::string_view kRounds = "rounds=";
        const std::string_view rest = s.substr(3);
        if (!starts_with(rest, kRounds)) {
            return 5000;
        }
        std::uint32_t rounds = 0;
        for (std::size_t i = kRounds.size(); i < rest.size() && rest[i] != '$'; ++i) {
            rounds = rounds * 10 + static_cast<std::uint32_t>(rest[i] - '0');
        }
        return std::clamp<std::uint32_t>(rounds, 1000, 999999999);
    }
    default:
        return 0;
    }
}

HashUsability hash_usability(std::string_view stored, HashFormat format) noexcept
{
    if (format == HashFormat::unknown) {
        return HashUsability::unknown_format;
    }
    const std::uint32_t cost = hash_cost(stored, format);
    switch (format) {
    case HashFormat::bcrypt:
        return cost >= kMinBcryptCost && cost <= kMaxBcryptCost ? HashUsability::usable
                                                                 : HashUsability::cost_out_of_range;
    case HashFormat::sha256_crypt:
    case HashFormat::sha512_crypt:
        return cost <= kMaxShaCryptRounds ? HashUsability::usable : HashUsability::cost_out_of_range;
    default:
        return HashUsability::usable;
    }
}

std::string describe_unusable(std::string_view stored, HashFormat format)
{
    switch (hash_usability(stored, format)) {
    case HashUsability::usable:
        return "usable";
    case HashUsability::unknown_format:
        return "not a recognised hash (bcrypt, APR1-MD5, {SHA}, crypt, SHA-256/512 crypt)";
    case HashUsability::cost_out_of_range:
        break;
    }
    const std::string cost = std::to_string(hash_cost(stored, format));
    if (format == HashFormat::bcrypt) {
        return "bcrypt of cost " + cost + ", outside htpasswd's range of " + std::to_string(kMinBcryptCost) +
               " to " + std::to_string(kMaxBcryptCost);
    }
    return std::string(format_name(format)) + " of " + cost + " rounds, over the limit of " +
           std::to_string(kMaxShaCryptRounds);
}

std::string dummy_hash(HashFormat format, std::uint32_t cost)
{
    // Salts in each format's alphabet; digests of one repeated character,
    // which no known input produces.
    switch (format) {
    case HashFormat::bcrypt: {
        const std::uint32_t c = std::clamp(cost, kMinBcryptCost, kMaxBcryptCost);
        std::string out = "$2y$";
        out += static_cast<char>('0' + c / 10);
        out += static_cast<char>('0' + c % 10);
        return out + "$.jrqOBtTCXHolDCnsTzt1u" + std::string(31, 'A');
    }
    case HashFormat::sha256_crypt:
    case HashFormat::sha512_crypt: {
        const std::uint32_t rounds = std::clamp<std::uint32_t>(cost, 1000, kMaxShaCryptRounds);
        const bool sha256 = format == HashFormat::sha256_crypt;
        return std::string(sha256 ? "$5$" : "$6$") + "rounds=" + std::to_string(rounds) + "$dUmMySaLtDuMmYsA$" +
               std::string(sha256 ? 43 : 86, 'A');
    }
    case HashFormat::md5_crypt:
        return "$1$dUmMySaL$" + std::string(22, 'A');
    case HashFormat::sha1:
        return "{SHA}" + std::string(27, 'A') + "=";
    case HashFormat::crypt_des:
        return "dU" + std::string(11, 'A');
    case HashFormat::apr1_md5:
    case HashFormat::unknown:
        break;
    }
    return "$apr1$dUmMySaL$" + std::string(22, 'A');
}

bool verify_password(const char *password, const char *stored, HashFormat format) noexcept
{
    // Never compared as plaintext, never run past the cost cap.
    if (hash_usability(stored, format) != HashUsability::usable) {
        return false;
    }
    switch (format) {
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
