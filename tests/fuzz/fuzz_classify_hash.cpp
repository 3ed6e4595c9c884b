// Fuzz target: recognising stored hashes, and verifying passwords against them.
//
// The input is "<stored hash>\0<password>" (a single string is a hash with
// an empty password); the whole input, NULs included, is classified too.
// Properties: a recognised hash has the shape its format promises and only
// bytes an htpasswd line can hold; its cost reads back within glibc's and
// bcrypt's ranges, and the dummy hash of its format and cost is usable,
// classifies alike and matches neither password; verify_password() refuses
// an unknown format and anything over the cost cap without looking, and
// survives any password against any recognised hash. Costly hashes (bcrypt cost > 6, SHA-crypt rounds > 5000) are not
// verified, to keep executions fast: their cost is in the algorithm, not in
// our code.

#include "auth_proxy/verify/password_hash.hpp"

#include "fuzz_support.hpp"

#include <apr_general.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>

using auth_proxy::classify_hash;
using auth_proxy::dummy_hash;
using auth_proxy::format_name;
using auth_proxy::hash_cost;
using auth_proxy::hash_usability;
using auth_proxy::HashUsability;
using auth_proxy::HashFormat;
using auth_proxy::verify_password;

namespace {

constexpr HashFormat kFormats[] = {HashFormat::unknown,    HashFormat::bcrypt,       HashFormat::apr1_md5,
                                   HashFormat::sha1,       HashFormat::crypt_des,    HashFormat::md5_crypt,
                                   HashFormat::sha256_crypt, HashFormat::sha512_crypt};

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

/** The shape each format's documentation promises. */
bool has_shape(std::string_view s, HashFormat format)
{
    switch (format) {
    case HashFormat::unknown: return true;
    case HashFormat::bcrypt:
        return s.size() == 60 && (starts_with(s, "$2a$") || starts_with(s, "$2b$") || starts_with(s, "$2y$")) &&
               s[4] >= '0' && s[4] <= '9' && s[5] >= '0' && s[5] <= '9' && s[6] == '$';
    case HashFormat::apr1_md5: return starts_with(s, "$apr1$") && s.size() > 6 + 22;
    case HashFormat::sha1: return starts_with(s, "{SHA}") && s.size() == 33 && s.back() == '=';
    case HashFormat::crypt_des: return s.size() == 13;
    case HashFormat::md5_crypt: return starts_with(s, "$1$") && s.size() > 3 + 22;
    case HashFormat::sha256_crypt: return starts_with(s, "$5$") && s.size() > 3 + 43;
    case HashFormat::sha512_crypt: return starts_with(s, "$6$") && s.size() > 3 + 86;
    }
    return false;
}

/** A byte that an htpasswd line can carry inside a hash: visible ASCII, not the field separator. */
bool fits_a_line(std::string_view s)
{
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == ':') {
            return false;
        }
    }
    return true;
}

/** True unless verifying would spend more than a few milliseconds in the algorithm itself. */
bool cheap_to_verify(std::string_view s, HashFormat format)
{
    if (format == HashFormat::bcrypt) {
        return (s[4] - '0') * 10 + (s[5] - '0') <= 6;
    }
    if (format == HashFormat::sha256_crypt || format == HashFormat::sha512_crypt) {
        if (!starts_with(s.substr(3), "rounds=")) {
            return true; // the default, 5000
        }
        return std::strtoul(std::string(s.substr(10, s.find('$', 10) - 10)).c_str(), nullptr, 10) <= 5000;
    }
    return true;
}

/** A NUL-terminated copy in a heap block of exactly that size, so ASan sees reads past the end. */
std::unique_ptr<char[]> c_string(std::string_view s)
{
    std::unique_ptr<char[]> copy(new char[s.size() + 1]);
    if (!s.empty()) {
        std::memcpy(copy.get(), s.data(), s.size());
    }
    copy[s.size()] = '\0';
    return copy;
}

void check_classification(std::string_view s)
{
    const HashFormat format = classify_hash(s);
    FUZZ_CHECK(has_shape(s, format), std::string(format_name(format)) + " without its shape: " + fuzz::hex(s));
    if (format != HashFormat::unknown) {
        FUZZ_CHECK(fits_a_line(s), std::string(format_name(format)) + " with a byte no line holds: " + fuzz::hex(s));
    }
}

/** Cost, cap and dummy of a recognised hash. */
void check_cost(std::string_view s, HashFormat format, std::string_view password)
{
    const std::uint32_t cost = hash_cost(s, format);
    const HashUsability usability = hash_usability(s, format);
    if (format == HashFormat::bcrypt) {
        FUZZ_CHECK(cost <= 39, "bcrypt cost " + std::to_string(cost) + " from " + fuzz::hex(s));
    }
    else if (format == HashFormat::sha256_crypt || format == HashFormat::sha512_crypt) {
        FUZZ_CHECK(cost >= 1000 && cost <= 999999999, "rounds " + std::to_string(cost) + " from " + fuzz::hex(s));
    }
    else {
        FUZZ_CHECK(cost == 0 && usability == HashUsability::usable, "a fixed-cost format with a cost: " + fuzz::hex(s));
    }
    if (usability != HashUsability::usable) {
        FUZZ_CHECK(!auth_proxy::describe_unusable(s, format).empty(), "no reason for an unusable hash");
        const auto stored_c = std::string(s);
        const auto password_c = std::string(password);
        FUZZ_CHECK(!verify_password(password_c.c_str(), stored_c.c_str(), format), "an over-cap hash verified");
        return;
    }
    const std::string dummy = dummy_hash(format, cost);
    FUZZ_CHECK(classify_hash(dummy) == format && hash_cost(dummy, format) == cost &&
                   hash_usability(dummy, format) == HashUsability::usable,
               "the dummy of " + fuzz::hex(s) + " is " + dummy);
    if (cheap_to_verify(dummy, format)) {
        const auto password_c = std::string(password);
        FUZZ_CHECK(!verify_password(password_c.c_str(), dummy.c_str(), format), "a password matched a dummy hash");
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    if (apr_initialize() != APR_SUCCESS) {
        std::abort();
    }
    std::atexit(apr_terminate);
    // Every format has its own, non-empty name; unknown is "unknown".
    std::set<std::string> names;
    for (const HashFormat f : kFormats) {
        FUZZ_CHECK(format_name(f) != nullptr && *format_name(f) != '\0', "a format without a name");
        FUZZ_CHECK(names.insert(format_name(f)).second, std::string("two formats named ") + format_name(f));
    }
    FUZZ_CHECK(std::string(format_name(HashFormat::unknown)) == "unknown", "unknown is not \"unknown\"");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string_view input = fuzz::as_view(data, size);
    check_classification(input);

    const std::string_view stored = input.substr(0, input.find('\0'));
    std::string_view password = stored.size() < input.size() ? input.substr(stored.size() + 1) : std::string_view();
    password = password.substr(0, password.find('\0'));
    check_classification(stored);

    const HashFormat format = classify_hash(stored);
    const auto stored_c = c_string(stored);
    const auto password_c = c_string(password);
    FUZZ_CHECK(!verify_password(password_c.get(), stored_c.get(), HashFormat::unknown),
               "an unknown format verified");
    if (format != HashFormat::unknown) {
        check_cost(stored, format, password);
    }
    if (format != HashFormat::unknown && cheap_to_verify(stored, format)) {
        (void)verify_password(password_c.get(), stored_c.get(), format); // must not crash or read past either string
    }
    return 0;
}
