/**
 * @file negotiate_scheme.hpp
 * AuthType ProxyNegotiate: SPNEGO/Kerberos tokens (RFC 4559) accepted with
 * the scope's service keys, one leg, no passwords.
 *
 * The stages, in order: the header is parsed; the throttle refuses a
 * locked-out address before any token is looked at, and the same refused
 * token again without asking GSS-API; the scope's acceptor checks the
 * token (its replay cache is shared by every server process); the client
 * principal's local name (or, with AuthProxyLocalName Off, the principal)
 * is the user. Refusals are counted by the throttle per address: a token
 * names no user until it is accepted. Nothing is cached: no client sends a
 * token twice, and a token seen twice is a replay.
 */
#pragma once

#include "auth_proxy/scheme/scheme.hpp"

namespace auth_proxy {

class NegotiateScheme final : public Scheme {
public:
    std::string_view auth_type() const noexcept override { return "ProxyNegotiate"; }
    std::string_view token() const noexcept override { return "Negotiate"; }
    bool checks_passwords() const noexcept override { return false; }
    bool uses_service_keys() const noexcept override { return true; }
    /** Browsers send a token only when challenged: once per connection, if it stays authenticated. */
    bool binds_connection() const noexcept override { return true; }
    /** "Negotiate": the scheme has no realm (RFC 4559). */
    std::string challenge(std::string_view realm) const override;
    Verdict authenticate(const Services &services, const AuthRequest &request,
                         CredentialBuffer &buffer) const override;
};

} // namespace auth_proxy
