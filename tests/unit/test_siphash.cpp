// SipHash-2-4 against the reference implementation's test vectors
// (key 00..0f, message 00..n-1).

#include "auth_proxy/cache/siphash.hpp"

#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>

using namespace auth_proxy;

BOOST_AUTO_TEST_SUITE(siphash)

BOOST_AUTO_TEST_CASE(the_reference_vectors)
{
    std::array<std::uint8_t, 16> key;
    std::array<std::uint8_t, 64> message;
    for (std::size_t i = 0; i < message.size(); ++i) {
        message[i] = static_cast<std::uint8_t>(i);
        if (i < key.size()) {
            key[i] = static_cast<std::uint8_t>(i);
        }
    }
    const SipHash24 hash(key.data(), key.size());
    struct Vector {
        std::size_t length;
        std::uint64_t expected;
    };
    for (const Vector v : {Vector{0, 0x726fdb47dd0e0e31ULL}, Vector{1, 0x74f839c593dc67fdULL},
                           Vector{15, 0xa129ca6149be45e5ULL}, Vector{63, 0x958a324ceb064572ULL}}) {
        BOOST_TEST(hash(message.data(), v.length) == v.expected, "length " << v.length);
    }
}

BOOST_AUTO_TEST_CASE(another_key_another_hash)
{
    const std::uint8_t a[16] = {1}, b[16] = {2};
    const char text[] = "192.0.2.1";
    BOOST_TEST(SipHash24(a, sizeof a)(text, sizeof text) != SipHash24(b, sizeof b)(text, sizeof text));
}

BOOST_AUTO_TEST_SUITE_END()
