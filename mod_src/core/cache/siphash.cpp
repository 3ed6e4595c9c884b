#include "auth_proxy/cache/siphash.hpp"

#include <algorithm>
#include <cstring>

namespace auth_proxy {

namespace {

std::uint64_t rotl(std::uint64_t x, int bits) noexcept
{
    return (x << bits) | (x >> (64 - bits));
}

/** Little-endian, whatever the host: the reference test vectors assume it. */
std::uint64_t load_le(const std::uint8_t *p, std::size_t n) noexcept
{
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) {
        v = (v << 8) | p[i];
    }
    return v;
}

struct State {
    std::uint64_t v0, v1, v2, v3;

    void round() noexcept
    {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    }

    void absorb(std::uint64_t m) noexcept
    {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

} // namespace

SipHash24::SipHash24(const void *key, std::size_t size) noexcept
{
    std::uint8_t k[16] = {};
    std::memcpy(k, key, std::min<std::size_t>(size, sizeof k));
    k0_ = load_le(k, 8);
    k1_ = load_le(k + 8, 8);
}

std::uint64_t SipHash24::operator()(const void *data, std::size_t size) const noexcept
{
    State s{0x736f6d6570736575ULL ^ k0_, 0x646f72616e646f6dULL ^ k1_, 0x6c7967656e657261ULL ^ k0_,
            0x7465646279746573ULL ^ k1_};
    const auto *p = static_cast<const std::uint8_t *>(data);
    const std::size_t whole = size & ~std::size_t{7};
    for (std::size_t i = 0; i < whole; i += 8) {
        s.absorb(load_le(p + i, 8));
    }
    s.absorb((static_cast<std::uint64_t>(size) << 56) | load_le(p + whole, size - whole));
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) {
        s.round();
    }
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

} // namespace auth_proxy
