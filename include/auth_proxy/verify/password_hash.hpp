/**
 * @file password_hash.hpp
 * Recognising and verifying the password hashes that htpasswd writes.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace auth_proxy {

enum class HashFormat {
    unknown,      ///< not a hash we know: never compared, not even as plaintext
    bcrypt,       ///< $2y$ (htpasswd -B), $2a$, $2b$
    apr1_md5,     ///< $apr1$ (htpasswd -m, the default)
    sha1,         ///< {SHA} (htpasswd -s)
    crypt_des,    ///< 13-character traditional crypt (htpasswd -d)
    md5_crypt,    ///< $1$ (glibc crypt)
    sha256_crypt, ///< $5$ (htpasswd -2)
    sha512_crypt, ///< $6$ (htpasswd -5)
};

/** Name for log lines and benchmark tables, e.g. "bcrypt". */
const char *format_name(HashFormat format) noexcept;

/** Recognises the format of a stored hash by its shape alone. */
HashFormat classify_hash(std::string_view stored) noexcept;

/**
 * The work factor of a stored hash: bcrypt's cost (log2 of its rounds),
 * SHA-256/512-crypt's rounds (5000 when the hash names none, glibc's
 * clamping to 1000..999999999 applied), 0 for the fixed-cost formats.
 * @p stored must be of @p format (see classify_hash()).
 */
std::uint32_t hash_cost(std::string_view stored, HashFormat format) noexcept;

/**
 * The most work one entry may ask of a verification. bcrypt: htpasswd's own
 * range (-C 4 to 17), which APR also enforces. SHA-256/512-crypt: htpasswd
 * -r accepts anything up to glibc's 999,999,999 rounds (several minutes per
 * verification); 20,000,000 rounds take about as long as bcrypt at cost 17
 * (2.7 s per 10,000,000 SHA-512 rounds against 6.6 s for bcrypt 17 on the
 * reference machine), 4000 times htpasswd's default of 5000.
 */
constexpr std::uint32_t kMinBcryptCost = 4;
constexpr std::uint32_t kMaxBcryptCost = 17;
constexpr std::uint32_t kMaxShaCryptRounds = 20000000;

/** Whether a stored hash may be verified at all. */
enum class HashUsability {
    usable,
    unknown_format, ///< not a hash we recognise (never compared, not even as plaintext)
    cost_out_of_range, ///< over the cost cap, or a bcrypt cost APR refuses
};

/** Checks @p stored (of @p format) against the format list and the cost cap. */
HashUsability hash_usability(std::string_view stored, HashFormat format) noexcept;

/** Operator-facing reason, e.g. "SHA-512-crypt of 999999999 rounds, over the limit of 20000000". */
std::string describe_unusable(std::string_view stored, HashFormat format);

/**
 * A well-formed hash of @p format and @p cost that no password matches (in
 * any practical sense: its digest is a constant no input is known to
 * produce). Verifying a password against it costs what a wrong password for
 * a real entry of that format and cost costs, which is what an unknown user
 * or an unusable entry is made to cost.
 */
std::string dummy_hash(HashFormat format, std::uint32_t cost);

/**
 * The part of @p password that a hash of @p format reads: bcrypt reads at
 * most 72 bytes, traditional crypt (DES) 8, every other format all of it.
 * Two passwords with the same significant bytes get the same answer from
 * any hash of that format, so this, not the whole password, is what a
 * cache or a failure memory keys on.
 */
std::string_view significant_password_bytes(std::string_view password, HashFormat format) noexcept;

/** bcrypt's key is at most 72 bytes; traditional crypt's 8 characters. */
constexpr std::size_t kBcryptPasswordBytes = 72;
constexpr std::size_t kCryptDesPasswordBytes = 8;

/**
 * Verifies @p password against @p stored (both NUL-terminated).
 * Returns false for a hash that is not usable (see hash_usability())
 * without looking at the password.
 */
bool verify_password(const char *password, const char *stored, HashFormat format) noexcept;

} // namespace auth_proxy
