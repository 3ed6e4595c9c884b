/**
 * @file client_address.hpp
 * Client addresses as the throttle counts them, and address lists (CIDR)
 * for its exemptions.
 */
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace auth_proxy {

/** An IPv4 or IPv6 address, IPv4 held as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct ClientAddress {
    std::array<std::uint8_t, 16> bytes{};
    bool valid = false;

    /** Parses "192.0.2.1", "2001:db8::1" or "::ffff:192.0.2.1"; valid is false for anything else. */
    static ClientAddress parse(std::string_view text);

    bool is_ipv4() const noexcept;
    std::string to_string() const;

    /**
     * What failures are counted under: an IPv4 address as it is, an IPv6
     * address by its /64, the block one subscriber (or one attacker) is
     * normally given; counting per IPv6 address would let one client spread
     * its guesses over 2^64 addresses.
     */
    std::array<std::uint8_t, 16> throttle_subject() const noexcept;

    /** An IPv6 address's /@p bits prefix as text ("2001:db8:1::/48"). */
    std::string prefix_string(unsigned bits) const;
};

/** A set of address blocks ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7"). */
class AddressList {
public:
    /** Adds one block; false and @p error if @p text is not an address or address/bits. */
    bool add(std::string_view text, std::string &error);

    bool contains(const ClientAddress &address) const noexcept;
    bool empty() const noexcept { return blocks_.empty(); }
    std::size_t size() const noexcept { return blocks_.size(); }

private:
    struct Block {
        std::array<std::uint8_t, 16> bytes;
        unsigned bits; ///< prefix length over the 16-byte form (IPv4 blocks: 96 + their length)
    };
    std::vector<Block> blocks_;
};

} // namespace auth_proxy
