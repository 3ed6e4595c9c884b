/**
 * @file hmac_sha256.hpp
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained.
 *
 * The credential cache keys every request with an HMAC. This is written
 * here rather than taken from libcrypto for two reasons: a keyed HMAC with
 * its inner and outer states computed once costs three compressions per
 * request, where OpenSSL 3's one-shot HMAC() re-fetches its algorithm
 * implementations on every call; and initialising libcrypto registers an
 * atexit() handler (OPENSSL_cleanup) that frees memory when an httpd child
 * exits — and httpd's MPMs call exit() from a signal handler, so a child
 * stopped while inside malloc() aborted with a corrupted heap.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace auth_proxy {

using Sha256Digest = std::array<std::uint8_t, 32>;

/** Incremental SHA-256. Copyable: a copy continues from the same state. */
class Sha256 {
public:
    Sha256() noexcept;
    Sha256(const Sha256 &) noexcept = default;
    Sha256 &operator=(const Sha256 &) noexcept = default;
    /** Wipes the buffered message bytes (they may hold a password). */
    ~Sha256();

    void update(const void *data, std::size_t size) noexcept;
    void update(std::string_view text) noexcept { update(text.data(), text.size()); }

    /** The digest of everything updated so far; the object is spent afterwards. */
    Sha256Digest finish() noexcept;

    static Sha256Digest of(std::string_view text) noexcept;

private:
    void compress(const std::uint8_t *block) noexcept;

    std::array<std::uint32_t, 8> state_;
    std::uint64_t length_ = 0; ///< message bytes so far
    std::array<std::uint8_t, 64> block_{};
    std::size_t buffered_ = 0; ///< bytes of block_ in use
};

/**
 * HMAC-SHA256 under one fixed key. The key's inner and outer padded blocks
 * are hashed once here, so each message costs its own blocks plus one.
 */
class HmacSha256 {
public:
    HmacSha256(const void *key, std::size_t size) noexcept;

    /** A hash already keyed with the inner pad: update() it with the message. */
    Sha256 begin() const noexcept { return inner_; }

    /** The MAC of the message hashed into @p inner (from begin()). */
    Sha256Digest finish(Sha256 &inner) const noexcept;

    Sha256Digest mac(std::string_view message) const noexcept;

private:
    Sha256 inner_;
    Sha256 outer_;
};

} // namespace auth_proxy
