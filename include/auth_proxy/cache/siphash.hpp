/**
 * @file siphash.hpp
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for
 * picking table buckets.
 *
 * A bucket index that anyone can compute lets anyone choose keys that
 * collide. An HMAC would do, but costs two SHA-256 compressions on every
 * request's throttle lookup; SipHash is made for exactly this (hash-flooding
 * resistance for short inputs) and costs a few dozen nanoseconds.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace auth_proxy {

class SipHash24 {
public:
    /** Keyed with the first 16 bytes of @p key (fewer: the rest zero). */
    SipHash24(const void *key, std::size_t size) noexcept;

    /** The 64-bit SipHash-2-4 of @p size bytes at @p data. */
    std::uint64_t operator()(const void *data, std::size_t size) const noexcept;

private:
    std::uint64_t k0_ = 0;
    std::uint64_t k1_ = 0;
};

} // namespace auth_proxy
