// Fuzz target: the first token of a Negotiate exchange (spnego.hpp) and the
// Negotiate header values (negotiate_header.hpp).
//
// The input is a token's bytes. read_initial_token() must point only into
// them, hand Kerberos the whole input for a raw Kerberos token and a part of
// it for SPNEGO (naming one of the two Kerberos OIDs), and nothing for every
// other kind. The input must also come back unchanged through
// negotiate_challenge() and parse_negotiate_header() (strict base64 has one
// spelling), unless it is too long, which must then be refused.

#include "auth_proxy/scheme/negotiate/negotiate_header.hpp"
#include "auth_proxy/scheme/negotiate/spnego.hpp"

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

using auth_proxy::InitialTokenKind;

namespace {

bool inside(std::string_view part, std::string_view whole)
{
    return part.empty() ||
           (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_initial_token(std::string_view token)
{
    const auto initial = auth_proxy::read_initial_token(token);
    const std::string detail =
        "kind " + std::to_string(static_cast<int>(initial.kind)) + ", token " + fuzz::hex(token);
    FUZZ_CHECK(inside(initial.kerberos_token, token) && inside(initial.mech_oid, token), detail);
    switch (initial.kind) {
    case InitialTokenKind::kerberos:
        FUZZ_CHECK(initial.kerberos_token.size() == token.size() && initial.mech_oid.empty(), detail);
        break;
    case InitialTokenKind::spnego_kerberos:
        FUZZ_CHECK(!initial.kerberos_token.empty() && initial.kerberos_token.size() < token.size(), detail);
        FUZZ_CHECK(initial.mech_oid == std::string_view("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02", 9) ||
                       initial.mech_oid == std::string_view("\x2a\x86\x48\x82\xf7\x12\x01\x02\x02", 9),
                   detail);
        break;
    default:
        FUZZ_CHECK(initial.kerberos_token.empty() && initial.mech_oid.empty(), detail);
        break;
    }
}

void check_header_round_trip(std::string_view token)
{
    std::string parsed = "stale";
    const auto error = auth_proxy::parse_negotiate_header(auth_proxy::negotiate_challenge(token), parsed);
    const bool fits = (token.size() + 2) / 3 * 4 <= auth_proxy::kMaxNegotiateToken;
    if (token.empty()) {
        FUZZ_CHECK(error == auth_proxy::NegotiateHeaderError::missing_token && parsed.empty(), "empty token");
    }
    else if (fits) {
        FUZZ_CHECK(error == auth_proxy::NegotiateHeaderError::none && parsed == token, fuzz::hex(token));
    }
    else {
        FUZZ_CHECK(error == auth_proxy::NegotiateHeaderError::too_long && parsed.empty(), "long token");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    // An exact heap copy, so that ASan sees any read past the token.
    const std::unique_ptr<char[]> copy(new char[size == 0 ? 1 : size]);
    std::memcpy(copy.get(), data, size);
    const std::string_view token(copy.get(), size);
    check_initial_token(token);
    check_header_round_trip(token);
    return 0;
}
