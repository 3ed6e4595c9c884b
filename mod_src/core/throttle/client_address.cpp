#include "auth_proxy/throttle/client_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace auth_proxy {

namespace {

constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool prefix_equal(const std::array<std::uint8_t, 16> &a, const std::array<std::uint8_t, 16> &b, unsigned bits) noexcept
{
    const unsigned whole = bits / 8;
    if (std::memcmp(a.data(), b.data(), whole) != 0) {
        return false;
    }
    const unsigned rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

} // namespace

ClientAddress ClientAddress::parse(std::string_view text)
{
    ClientAddress out;
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return out;
    }
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    unsigned char v4[4];
    if (::inet_pton(AF_INET, buf, v4) == 1) {
        std::memcpy(out.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size());
        std::memcpy(out.bytes.data() + 12, v4, 4);
        out.valid = true;
    }
    else if (::inet_pton(AF_INET6, buf, out.bytes.data()) == 1) {
        out.valid = true;
    }
    return out;
}

bool ClientAddress::is_ipv4() const noexcept
{
    return std::memcmp(bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

std::string ClientAddress::to_string() const
{
    if (!valid) {
        return "(unknown)";
    }
    char buf[INET6_ADDRSTRLEN];
    if (is_ipv4()) {
        return ::inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf) != nullptr ? buf : "(unknown)";
    }
    return ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf) != nullptr ? buf : "(unknown)";
}

std::array<std::uint8_t, 16> ClientAddress::throttle_subject() const noexcept
{
    std::array<std::uint8_t, 16> out = bytes;
    if (!is_ipv4()) {
        std::memset(out.data() + 8, 0, 8);
    }
    return out;
}

std::string ClientAddress::prefix_string(unsigned bits) const
{
    ClientAddress cut = *this;
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned kept = bits > i * 8 ? std::min(bits - i * 8, 8u) : 0;
        cut.bytes[i] = static_cast<std::uint8_t>(kept == 0 ? 0 : cut.bytes[i] & (0xff << (8 - kept)));
    }
    return cut.to_string() + "/" + std::to_string(bits);
}

bool AddressList::add(std::string_view text, std::string &error)
{
    const std::size_t slash = text.find('/');
    const ClientAddress address = ClientAddress::parse(text.substr(0, slash));
    if (!address.valid) {
        error = "'" + std::string(text) + "' is not an IP address or block (e.g. 10.0.0.0/8, 2001:db8::/32)";
        return false;
    }
    const unsigned base = address.is_ipv4() ? 96 : 0;
    unsigned bits = 128;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        unsigned n = 0;
        if (digits.empty() || digits.size() > 3) {
            error = "'" + std::string(text) + "': the prefix length is not a number";
            return false;
        }
        for (const char c : digits) {
            if (c < '0' || c > '9') {
                error = "'" + std::string(text) + "': the prefix length is not a number";
                return false;
            }
            n = n * 10 + static_cast<unsigned>(c - '0');
        }
        if (n > 128 - base) {
            error = "'" + std::string(text) + "': the prefix length is larger than the address";
            return false;
        }
        bits = base + n;
    }
    blocks_.push_back(Block{address.bytes, bits});
    return true;
}

bool AddressList::contains(const ClientAddress &address) const noexcept
{
    if (!address.valid) {
        return false;
    }
    for (const Block &b : blocks_) {
        if (prefix_equal(b.bytes, address.bytes, b.bits)) {
            return true;
        }
    }
    return false;
}

} // namespace auth_proxy
