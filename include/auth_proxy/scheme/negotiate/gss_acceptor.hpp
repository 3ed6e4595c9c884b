/**
 * @file gss_acceptor.hpp
 * Acceptance of one Negotiate token (SPNEGO, or raw Kerberos) with MIT's
 * GSS-API: who the client is, and why a token was refused.
 */
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace auth_proxy {

struct InitialToken;

/** What became of a token. Everything but accepted is a refusal. */
enum class AcceptStatus {
    accepted,        ///< a valid Kerberos ticket for a key we hold; principal (and user) set
    continue_needed, ///< the client wants a second round (SPNEGO preferring another mechanism);
                     ///< one round only is supported
    replay,          ///< this authenticator was seen before, by any process sharing the replay cache
    expired,         ///< the ticket has expired or is not yet valid, or the client's clock is off
                     ///< by more than the skew
    wrong_service,   ///< no key for the service the ticket names (another SPN, or a key version we lack)
    bad_token,       ///< not a Kerberos token: garbled, truncated, tampered, or another mechanism (NTLM)
    foreign_realm,   ///< valid, but the principal's realm is not ours and krb5.conf maps it to no local name
    no_local_name,   ///< valid, in our realm, but krb5.conf maps it to no local name (e.g. alice/admin)
    error,           ///< anything else (replay cache unwritable, out of memory): fail closed, see detail
};

/** The status's name as logs and JSON spell it, e.g. "wrong_service". */
const char *status_name(AcceptStatus status) noexcept;

/** A short operator-facing reason, e.g. "the token is a replay". */
const char *describe(AcceptStatus status) noexcept;

struct AcceptResult {
    AcceptStatus status = AcceptStatus::error;
    std::string principal;    ///< the client, "alice@PROXY.TEST", whenever the ticket was valid
    std::string user;         ///< REMOTE_USER: the local name ("alice"), or the principal with mapping off
    std::string output_token; ///< raw bytes for "Negotiate <base64>"; may be set on refusals too (KRB-ERROR)
    std::string detail;       ///< for the operator: GSS-API major and minor texts, or the mapping failure
};

struct AcceptorOptions {
    std::string keytab;      ///< keytab name, normally ServiceKeys::keytab_name()
    std::string rcache;      ///< replay cache name, e.g. "file2:/var/cache/apache2/negotiate.rcache2";
                             ///< "none:" turns replay detection off; empty leaves MIT's default
    bool local_name = true;  ///< AuthProxyLocalName: map principals with krb5_aname_to_localname()
};

/**
 * Accepts single-round Negotiate tokens for any key of one keytab (acceptor
 * name GSS_C_NO_NAME, so every HTTP/<host> in the keytab is served, as
 * mod_auth_gssapi does). The SPNEGO wrapping is read and written here
 * (spnego.hpp) and only Kerberos goes through the GSS-API, so NTLM is never
 * negotiated, even where gss-ntlmssp is installed.
 *
 * Thread-safe. MIT holds a credential's lock for the whole of an accept,
 * so one credential would serialise a process's threads; the acceptor
 * keeps a credential per concurrent caller instead, in a free list. Every
 * credential stores into the same replay cache, whose file2 type locks the
 * file (OFD locks) on each store, so threads and processes share it.
 *
 * Create it in the process that accepts (httpd's child, as the User):
 * credentials are acquired then, and a replay cache it cannot write is
 * reported by create() instead of by every request.
 */
class GssAcceptor {
public:
    /** Acquires a first credential and checks the replay cache; nullptr with @p error on failure. */
    static std::unique_ptr<GssAcceptor> create(AcceptorOptions options, std::string &error) noexcept;

    ~GssAcceptor();
    GssAcceptor(const GssAcceptor &) = delete;
    GssAcceptor &operator=(const GssAcceptor &) = delete;

    /** Accepts one token (the decoded bytes of "Negotiate <base64>"). Never throws. */
    AcceptResult accept(std::string_view token) noexcept;

    /** The realm principals must be in to map to a bare local name (empty with mapping off). */
    const std::string &default_realm() const noexcept { return default_realm_; }

private:
    struct Credentials;
    explicit GssAcceptor(AcceptorOptions options);

    /** Refuses a token that holds no Kerberos token to accept; false if it holds one. */
    static bool refuse_unwrapped(const InitialToken &initial, AcceptResult &result);
    /** Accepts the Kerberos token @p token with one of our credentials. */
    void accept_kerberos(std::string_view token, AcceptResult &result);

    AcceptorOptions options_;
    std::string default_realm_;
    std::unique_ptr<Credentials> credentials_;
};

} // namespace auth_proxy
