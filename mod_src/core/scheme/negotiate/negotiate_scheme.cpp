#include "auth_proxy/scheme/negotiate/negotiate_scheme.hpp"

#include "auth_proxy/scheme/negotiate/gss_acceptor.hpp"
#include "auth_proxy/scheme/negotiate/negotiate_header.hpp"

#include <cstring>
#include <string>

namespace auth_proxy {

namespace {

/** What a refused token is remembered under, in place of a stored hash: no hash holds a NUL. */
constexpr std::string_view kTokenTag{"\0negotiate", 10};

/** @p name into @p buffer, NUL-terminated; false if it does not fit. */
bool hold(const std::string &name, CredentialBuffer &buffer, std::string_view &out) noexcept
{
    if (name.size() + 1 > sizeof buffer.bytes) {
        return false;
    }
    std::memcpy(buffer.bytes, name.data(), name.size());
    buffer.bytes[name.size()] = '\0';
    out = std::string_view(buffer.bytes, name.size());
    return true;
}

Reason reason_of(AcceptStatus status) noexcept
{
    switch (status) {
    case AcceptStatus::accepted: return Reason::none;
    case AcceptStatus::continue_needed:
    case AcceptStatus::bad_token: return Reason::malformed;
    case AcceptStatus::replay: return Reason::replayed;
    case AcceptStatus::expired: return Reason::ticket_expired;
    case AcceptStatus::wrong_service: return Reason::wrong_service;
    case AcceptStatus::foreign_realm:
    case AcceptStatus::no_local_name: return Reason::no_local_name;
    case AcceptStatus::error: return Reason::acceptor_error;
    }
    return Reason::acceptor_error;
}

} // namespace

std::string NegotiateScheme::challenge(std::string_view) const
{
    return negotiate_challenge();
}

Verdict NegotiateScheme::authenticate(const Services &services, const AuthRequest &request,
                                      CredentialBuffer &buffer) const
{
    Verdict v;
    std::string token;
    const NegotiateHeaderError error = parse_negotiate_header(request.header != nullptr ? request.header : "", token);
    if (error != NegotiateHeaderError::none) {
        v.outcome = Outcome::refused;
        v.reason = Reason::malformed;
        v.detail = describe(error);
        return v;
    }

    // A locked-out address learns nothing, not even whether this token is good.
    Throttle *throttle = services.throttle;
    bool throttling = false;
    SetKey failure{};
    if (throttle != nullptr) {
        const Throttle::Lock lock = throttle->check(request.client, {}, request.now);
        if (lock.locked) {
            v.outcome = Outcome::throttled;
            v.reason = lock.table_full ? Reason::throttle_full : Reason::address_locked;
            v.retry_after = lock.retry_after;
            v.locked_prefix = lock.prefix;
            return v;
        }
        throttling = throttle->applies_to(request.client);
        if (throttling) {
            failure = throttle->failure_key(request.client, {}, token, kTokenTag);
            if (throttle->is_repeat(failure, request.now)) {
                v.outcome = Outcome::refused;
                v.reason = Reason::repeated_failure;
                return v;
            }
        }
    }

    if (request.acceptor == nullptr) {
        v.outcome = Outcome::failed;
        v.reason = Reason::acceptor_error;
        v.detail = "the scope has no Kerberos acceptor (AuthProxyKeytab)";
        return v;
    }
    AcceptResult result = request.acceptor->accept(token);
    v.verified = true;
    v.detail = result.detail;
    if (result.status == AcceptStatus::accepted) {
        if (!hold(result.user, buffer, v.user)) {
            v.outcome = Outcome::failed;
            v.reason = Reason::acceptor_error;
            v.detail = "the client's name is too long";
            return v;
        }
        v.outcome = Outcome::admitted;
        v.detail = result.principal;
        return v;
    }
    if (!result.principal.empty()) {
        hold(result.principal, buffer, v.user); // for the log line: who was refused
    }
    v.reason = reason_of(result.status);
    if (v.reason == Reason::acceptor_error) {
        v.outcome = Outcome::failed; // not the client's doing: 500, and no failure counted
        return v;
    }
    v.outcome = Outcome::refused;
    if (throttling) {
        v.counted = throttle->note_failure(request.client, {}, failure, request.now);
        v.lockout = throttle->rule_crossed(v.counted);
    }
    return v;
}

} // namespace auth_proxy
