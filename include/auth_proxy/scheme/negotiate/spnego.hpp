/**
 * @file spnego.hpp
 * The single-round subset of SPNEGO (RFC 4178) that a Negotiate proxy
 * needs: find the Kerberos token in a client's first token, and wrap the
 * acceptor's answer.
 *
 * Unwrapping here rather than in MIT's SPNEGO mechanism keeps Kerberos's
 * own error codes: through MIT's SPNEGO, the mechglue renumbers the minor
 * status (a replay and a wrong service both come out as GSS_S_FAILURE with
 * a made-up minor code), so the refusal could not be classified.
 */
#pragma once

#include <string>
#include <string_view>

namespace auth_proxy {

/** What a client's first Negotiate token holds. */
enum class InitialTokenKind {
    kerberos,         ///< a raw Kerberos GSS-API token (RFC 4121), as some clients send in Negotiate
    spnego_kerberos,  ///< SPNEGO, Kerberos preferred, with its optimistic token
    spnego_other,     ///< SPNEGO preferring another mechanism but offering Kerberos: needs a 2nd round
    spnego_no_kerberos, ///< SPNEGO without Kerberos among its mechanisms (NTLM only, ...)
    ntlm,             ///< a bare NTLMSSP message
    malformed,        ///< none of these, or truncated
};

struct InitialToken {
    InitialTokenKind kind = InitialTokenKind::malformed;
    std::string_view kerberos_token; ///< what to give the Kerberos mechanism (into the caller's token)
    std::string_view mech_oid;       ///< SPNEGO: the DER contents of the Kerberos OID the client named
                                     ///< (Windows names 1.2.840.48018.1.2.2 and expects it back)
};

/** Reads a client's first token (the decoded bytes after "Negotiate "). */
InitialToken read_initial_token(std::string_view token) noexcept;

/** SPNEGO's negState. */
enum class NegState { accept_completed = 0, accept_incomplete = 1, reject = 2 };

/**
 * A NegTokenResp: @p state, the mechanism @p mech_oid (DER contents;
 * omitted if empty) and @p response_token (the mechanism's answer; omitted
 * if empty), e.g. accept-completed with Kerberos's AP-REP.
 */
std::string spnego_response(NegState state, std::string_view mech_oid, std::string_view response_token);

} // namespace auth_proxy
