#include "auth_proxy/store/kerberos_store.hpp"

#include "auth_proxy/scheme/negotiate/service_keys.hpp"

#include "../scheme/negotiate/krb5_handles.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace auth_proxy {

namespace {

/** A wrong password, however the exchange noticed it. */
bool wrong_password(krb5_error_code code) noexcept
{
    return code == KRB5KDC_ERR_PREAUTH_FAILED      // the KDC checked the encrypted timestamp
           || code == KRB5KRB_AP_ERR_BAD_INTEGRITY // the reply did not decrypt with the password's key
           || code == KRB5_PREAUTH_FAILED;         // the client gave up on every preauthentication
}

/** A principal the KDC keeps from logging in, whatever the password. */
bool locked(krb5_error_code code) noexcept
{
    return code == KRB5KDC_ERR_CLIENT_REVOKED   // disabled, or locked out by a lockout policy
           || code == KRB5KDC_ERR_NAME_EXP      // the principal itself has expired
           || code == KRB5KDC_ERR_CLIENT_NOTYET // not valid yet
           || code == KRB5KDC_ERR_POLICY;
}

/**
 * The keytab's principals to verify with: those of the user's realm first
 * (a service ticket within the realm needs no cross-realm trust), then the
 * others.
 */
std::vector<std::string> verifiers(const ServiceKeys &keys, const std::string &realm)
{
    std::vector<std::string> same, other;
    for (const std::string &principal : keys.principals()) {
        const auto at = principal.rfind('@');
        (at != std::string::npos && principal.compare(at + 1, std::string::npos, realm) == 0 ? same : other)
            .push_back(principal);
    }
    same.insert(same.end(), other.begin(), other.end());
    return same;
}

/**
 * Proves that @p creds came from a KDC that knows a key of @p keys: 0, or
 * the error of the last principal tried (with @p detail saying which).
 */
krb5_error_code verify(krb5_context context, krb5_creds &creds, const ServiceKeys &keys, std::string &detail)
{
    krb5::Keytab keytab(context);
    krb5_error_code code = krb5_kt_resolve(context, keys.keytab_name().c_str(), keytab.out());
    if (code != 0) {
        detail = "cannot open the service keys: " + krb5::error_text(context, code);
        return code;
    }
    krb5_verify_init_creds_opt options;
    krb5_verify_init_creds_opt_init(&options);
    // Without this, MIT skips the check when the keytab has no key to check with.
    krb5_verify_init_creds_opt_set_ap_req_nofail(&options, 1);
    const std::string realm(creds.client->realm.data, creds.client->realm.length);
    code = KRB5_KT_NOTFOUND;
    detail = "the keytab holds no service key";
    for (const std::string &name : verifiers(keys, realm)) {
        krb5::Principal server(context);
        code = krb5_parse_name(context, name.c_str(), server.out());
        if (code == 0) {
            // No ccache: the service ticket is fetched into a MEMORY one MIT makes and frees.
            code = krb5_verify_init_creds(context, &creds, server.get(), keytab.get(), nullptr, &options);
        }
        if (code == 0) {
            return 0;
        }
        detail = "with " + name + ": " + krb5::error_text(context, code);
    }
    return code;
}

/** The AS exchange: a ticket for @p client into @p creds, bought with @p password. */
krb5_error_code initial_ticket(krb5_context context, krb5_principal client, const char *password, krb5_creds &creds)
{
    krb5::InitOptions options(context);
    const krb5_error_code code = krb5_get_init_creds_opt_alloc(context, options.out());
    if (code != 0) {
        return code;
    }
    // The ticket is only a proof: nothing to forward, nothing to bind to an address.
    krb5_get_init_creds_opt_set_forwardable(options.get(), 0);
    krb5_get_init_creds_opt_set_proxiable(options.get(), 0);
    krb5_get_init_creds_opt_set_address_list(options.get(), nullptr);
    // No prompter: an expired password is an answer, never a password change.
    return krb5_get_init_creds_password(context, &creds, client, password, nullptr, nullptr, 0, nullptr,
                                        options.get());
}

/** True if @p principal is of the default realm. */
bool default_realm(krb5_context context, const krb5::Principal &principal)
{
    char *realm = nullptr;
    if (krb5_get_default_realm(context, &realm) != 0) {
        return false;
    }
    const krb5_data &own = principal.get()->realm;
    const bool same = std::string_view(own.data, own.length) == realm;
    krb5_free_default_realm(context, realm);
    return same;
}

} // namespace

CheckAnswer KerberosStore::report(KerberosProblem problem, std::string_view user, const std::string &detail,
                                  CheckAnswer answer) const
{
    if (report_.sink != nullptr) {
        report_.sink(report_.ctx, problem, user, detail);
    }
    return answer;
}

CheckAnswer KerberosStore::check(std::string_view user, const char *password)
{
    if (keys_ == nullptr) {
        return report(KerberosProblem::not_verified, user, "no AuthProxyKeytab to verify tickets with",
                      CheckAnswer::error);
    }
    if (password == nullptr || *password == '\0') {
        return CheckAnswer::denied; // MIT would prompt for it; no principal has an empty password
    }
    std::string error;
    krb5::Context context = krb5::new_context(error);
    if (!context) {
        return report(KerberosProblem::kdc_failed, user, error, CheckAnswer::error);
    }
    const std::string name(user);
    krb5::Principal client(context.get());
    krb5_error_code code = krb5_parse_name(context.get(), name.c_str(), client.out());
    if (code == KRB5_PARSE_MALFORMED || code == KRB5_PARSE_ILLCHAR) {
        return CheckAnswer::user_not_found; // no KDC knows such a name
    }
    if (code != 0) {
        return report(KerberosProblem::kdc_failed, user, krb5::error_text(context.get(), code), CheckAnswer::error);
    }
    const krb5_principal_data &parsed = *client.get();
    if (parsed.length == 0 || parsed.data[0].length == 0 || parsed.realm.length == 0) {
        return CheckAnswer::user_not_found; // "alice@", "@REALM": nobody's name
    }
    krb5::Credentials creds(context.get());
    code = initial_ticket(context.get(), client.get(), password, *creds.get());
    // A realm krb5.conf names no KDC for knows nobody; the default realm must have one.
    if (code == KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN ||
        (code == KRB5_REALM_UNKNOWN && !default_realm(context.get(), client))) {
        return CheckAnswer::user_not_found;
    }
    if (wrong_password(code)) {
        return CheckAnswer::denied;
    }
    if (code == KRB5KDC_ERR_KEY_EXP) {
        return report(KerberosProblem::password_expired, user, krb5::error_text(context.get(), code),
                      CheckAnswer::denied);
    }
    if (locked(code)) {
        return report(KerberosProblem::principal_locked, user, krb5::error_text(context.get(), code),
                      CheckAnswer::denied);
    }
    if (code != 0) {
        return report(KerberosProblem::kdc_failed, user, krb5::error_text(context.get(), code), CheckAnswer::error);
    }
    std::string detail;
    if (verify(context.get(), *creds.get(), *keys_, detail) != 0) {
        return report(KerberosProblem::not_verified, user, detail, CheckAnswer::error);
    }
    return CheckAnswer::granted;
}

} // namespace auth_proxy
