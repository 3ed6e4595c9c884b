/**
 * @file kerberos_store.hpp
 * AuthProxyProvider kerberos: a Basic password checked against the KDC, and
 * the ticket it buys verified with the proxy's own service keys.
 */
#pragma once

#include "auth_proxy/store/checking_store.hpp"

#include <string>
#include <string_view>

namespace auth_proxy {

class ServiceKeys;

/** Why a Kerberos check did not simply grant or deny: each is its own log line. */
enum class KerberosProblem {
    none,
    password_expired,  ///< denied: the KDC wants the password changed first
    principal_locked,  ///< denied: the principal is disabled, locked out or expired
    kdc_failed,        ///< error: no KDC answered, or it answered something other than yes or no
    not_verified,      ///< error: the KDC said yes, but its ticket fails the keytab (a spoofed KDC?)
};

/**
 * Where a KerberosStore reports its problems: the glue points it at the
 * request's error log. @p user is the name as typed; @p detail is the
 * Kerberos library's text.
 */
struct KerberosReport {
    void (*sink)(void *ctx, KerberosProblem problem, std::string_view user, const std::string &detail) = nullptr;
    void *ctx = nullptr;
};

/**
 * Checks a password with an AS exchange for the user's principal (the name
 * as typed; the default realm if it names none), then proves the KDC that
 * answered is the realm's own: krb5_verify_init_creds() asks it for a
 * ticket to one of the keytab's services and decrypts that ticket with the
 * key the keytab holds. A KDC that does not know that key (one an attacker
 * stood up, answering for any password) cannot make such a ticket, so its
 * "yes" never admits anyone.
 *
 * Nothing is written anywhere: the initial and the service tickets live in
 * memory for the length of one check and are freed with it. One krb5
 * context per check, so threads never share one (MIT's rule) and a changed
 * krb5.conf counts from the next check.
 */
class KerberosStore final : public CheckingStore {
public:
    KerberosStore() = default;
    /**
     * @p name: what it is configured as ("kerberos"); @p keys: the scope's
     * AuthProxyKeytab, loaded at start (outlives the store); @p times: the
     * answer times of this store, kept by the runtime (may be null).
     */
    KerberosStore(const char *name, const ServiceKeys *keys, AnswerTime *times, KerberosReport report) noexcept
        : name_(name), keys_(keys), times_(times), report_(report)
    {
    }

    std::string_view name() const noexcept override { return name_; }
    CheckAnswer check(std::string_view user, const char *password) override;
    AnswerTime *answer_time() noexcept override { return times_; }

private:
    CheckAnswer report(KerberosProblem problem, std::string_view user, const std::string &detail,
                       CheckAnswer answer) const;

    const char *name_ = "";
    const ServiceKeys *keys_ = nullptr;
    AnswerTime *times_ = nullptr;
    KerberosReport report_;
};

} // namespace auth_proxy
