#include "auth_proxy/cache/hmac_sha256.hpp"

#include <algorithm>
#include <cstring>
#include <string.h> // explicit_bzero: a wipe the compiler may not drop

namespace auth_proxy {

namespace {

// FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes.
constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// §5.3.3: the first 32 bits of the fractional parts of the square roots of
// the first 8 primes.
constexpr std::array<std::uint32_t, 8> kInitial = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

constexpr std::uint32_t rotr(std::uint32_t x, unsigned n) noexcept
{
    return (x >> n) | (x << (32 - n));
}

std::uint32_t load_be32(const std::uint8_t *p) noexcept
{
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

void store_be32(std::uint8_t *p, std::uint32_t v) noexcept
{
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

constexpr std::size_t kBlock = 64;

} // namespace

Sha256::Sha256() noexcept : state_(kInitial) {}

Sha256::~Sha256()
{
    explicit_bzero(block_.data(), block_.size());
}

void Sha256::compress(const std::uint8_t *block) noexcept
{
    std::uint32_t w[64];
    for (int t = 0; t < 16; ++t) {
        w[t] = load_be32(block + 4 * t);
    }
    for (int t = 16; t < 64; ++t) {
        const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    std::uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
    for (int t = 0; t < 64; ++t) {
        const std::uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        const std::uint32_t choose = (e & f) ^ (~e & g);
        const std::uint32_t t1 = h + big_s1 + choose + kRound[t] + w[t];
        const std::uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        const std::uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        const std::uint32_t t2 = big_s0 + majority;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
    state_[5] += f;
    state_[6] += g;
    state_[7] += h;
    explicit_bzero(w, sizeof w); // the schedule is derived from the message
}

void Sha256::update(const void *data, std::size_t size) noexcept
{
    if (size == 0) {
        return; // an empty view's data() may be null, which memcpy may not get
    }
    auto in = static_cast<const std::uint8_t *>(data);
    length_ += size;
    if (buffered_ > 0) {
        const std::size_t take = std::min(size, kBlock - buffered_);
        std::memcpy(block_.data() + buffered_, in, take);
        buffered_ += take;
        in += take;
        size -= take;
        if (buffered_ < kBlock) {
            return;
        }
        compress(block_.data());
        buffered_ = 0;
    }
    for (; size >= kBlock; in += kBlock, size -= kBlock) {
        compress(in);
    }
    if (size > 0) {
        std::memcpy(block_.data(), in, size);
        buffered_ = size;
    }
}

Sha256Digest Sha256::finish() noexcept
{
    // §5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, then the bit length.
    const std::uint64_t bits = length_ * 8;
    block_[buffered_++] = 0x80;
    if (buffered_ > kBlock - 8) {
        std::memset(block_.data() + buffered_, 0, kBlock - buffered_);
        compress(block_.data());
        buffered_ = 0;
    }
    std::memset(block_.data() + buffered_, 0, kBlock - 8 - buffered_);
    for (int i = 0; i < 8; ++i) {
        block_[kBlock - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
    }
    compress(block_.data());
    buffered_ = 0;

    Sha256Digest digest;
    for (int i = 0; i < 8; ++i) {
        store_be32(digest.data() + 4 * i, state_[i]);
    }
    return digest;
}

Sha256Digest Sha256::of(std::string_view text) noexcept
{
    Sha256 hash;
    hash.update(text);
    return hash.finish();
}

HmacSha256::HmacSha256(const void *key, std::size_t size) noexcept
{
    // RFC 2104 §2: a key longer than the block is hashed first; then it is
    // zero-padded to the block and XORed with 0x36 (inner) and 0x5c (outer).
    std::uint8_t padded[kBlock] = {};
    if (size > kBlock) {
        Sha256 long_key;
        long_key.update(key, size);
        const Sha256Digest digest = long_key.finish();
        std::memcpy(padded, digest.data(), digest.size());
    } else if (size > 0) {
        std::memcpy(padded, key, size);
    }
    std::uint8_t pad[kBlock];
    for (std::size_t i = 0; i < kBlock; ++i) {
        pad[i] = padded[i] ^ 0x36;
    }
    inner_.update(pad, kBlock);
    for (std::size_t i = 0; i < kBlock; ++i) {
        pad[i] = padded[i] ^ 0x5c;
    }
    outer_.update(pad, kBlock);
    explicit_bzero(padded, sizeof padded);
    explicit_bzero(pad, sizeof pad);
}

Sha256Digest HmacSha256::finish(Sha256 &inner) const noexcept
{
    const Sha256Digest inner_digest = inner.finish();
    Sha256 outer = outer_;
    outer.update(inner_digest.data(), inner_digest.size());
    return outer.finish();
}

Sha256Digest HmacSha256::mac(std::string_view message) const noexcept
{
    Sha256 inner = begin();
    inner.update(message);
    return finish(inner);
}

} // namespace auth_proxy
