/**
 * @file password_hash.hpp
 * Recognising and verifying the password hashes that htpasswd writes.
 */
#pragma once

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
 * Verifies @p password against @p stored (both NUL-terminated).
 * Returns false for HashFormat::unknown without looking at the password.
 */
bool verify_password(const char *password, const char *stored, HashFormat format) noexcept;

} // namespace auth_proxy
