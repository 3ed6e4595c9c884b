#include "auth_proxy/scheme/negotiate/gss_acceptor.hpp"

#include "auth_proxy/posix.hpp"
#include "auth_proxy/scheme/negotiate/spnego.hpp"
#include "krb5_handles.hpp"

#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include <cerrno>
#include <fcntl.h>
#include <mutex>
#include <vector>

namespace auth_proxy {

namespace {

/** Maps a refusal to its status: by the Kerberos code where there is one, else by the GSS-API class. */
AcceptStatus classify_failure(OM_uint32 major, OM_uint32 minor) noexcept
{
    switch (static_cast<krb5_error_code>(minor)) {
    case KRB5KRB_AP_ERR_REPEAT: return AcceptStatus::replay;
    case KRB5KRB_AP_ERR_TKT_EXPIRED:
    case KRB5KRB_AP_ERR_TKT_NYV:
    case KRB5KRB_AP_ERR_SKEW: return AcceptStatus::expired;
    case KRB5KRB_AP_ERR_NOKEY:
    case KRB5KRB_AP_ERR_NOT_US:
    case KRB5KRB_AP_WRONG_PRINC:
    case KRB5KRB_AP_ERR_BADKEYVER:
    case KRB5_KT_NOTFOUND:
    case KRB5_KT_KVNONOTFOUND: return AcceptStatus::wrong_service;
    case KRB5KRB_AP_ERR_BAD_INTEGRITY: // decrypts with none of our keys: tampered (or a stale keytab)
    case KRB5KRB_AP_ERR_MODIFIED:
    case KRB5KRB_AP_ERR_BADVERSION:
    case KRB5KRB_AP_ERR_MSG_TYPE:
    case KRB5KRB_AP_ERR_BADMATCH:
    case KRB5KRB_AP_ERR_INAPP_CKSUM:
    case KRB5KRB_AP_ERR_TKT_INVALID: return AcceptStatus::bad_token;
    default: break;
    }
    // ASN.1 decoding errors: a token with a Kerberos header and garbage after it.
    if (minor >= static_cast<OM_uint32>(ERROR_TABLE_BASE_asn1) &&
        minor < static_cast<OM_uint32>(ERROR_TABLE_BASE_asn1) + 256) {
        return AcceptStatus::bad_token;
    }
    switch (GSS_ROUTINE_ERROR(major)) {
    case GSS_S_DEFECTIVE_TOKEN:
    case GSS_S_BAD_MECH:
    case GSS_S_BAD_SIG:
    case GSS_S_DEFECTIVE_CREDENTIAL: return AcceptStatus::bad_token;
    case GSS_S_CREDENTIALS_EXPIRED: return AcceptStatus::expired;
    default: break;
    }
    if ((major & GSS_S_DUPLICATE_TOKEN) != 0 || (major & GSS_S_OLD_TOKEN) != 0) {
        return AcceptStatus::replay;
    }
    return AcceptStatus::error;
}

/** The realm part of an unparsed principal: after the last '@' that no '\' escapes. */
std::string_view realm_of(std::string_view principal) noexcept
{
    for (std::size_t i = principal.size(); i-- > 0;) {
        if (principal[i] == '@' && (i == 0 || principal[i - 1] != '\\')) {
            return principal.substr(i + 1);
        }
    }
    return {};
}

/** The default realm of krb5.conf, or "" with @p error set. */
std::string krb5_default_realm(std::string &error)
{
    krb5::Context context = krb5::new_context(error);
    if (!context) {
        return {};
    }
    char *realm = nullptr;
    const krb5_error_code code = krb5_get_default_realm(context.get(), &realm);
    if (code != 0) {
        error = "no default realm in krb5.conf (" + krb5::error_text(context.get(), code) + ")";
        return {};
    }
    std::string text = realm;
    krb5_free_default_realm(context.get(), realm);
    return text;
}

/**
 * Checks that this process can write the file of a "file2:" replay cache,
 * creating it as MIT would (mode 0600), so that an unwritable cache fails
 * the start instead of every request.
 */
bool check_rcache(const std::string &name, std::string &error)
{
    const std::string prefix = "file2:";
    if (name.compare(0, prefix.size(), prefix) != 0) {
        return true;
    }
    const std::string path = name.substr(prefix.size());
    const UniqueFd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) {
        error = errno_text("replay cache " + path, errno);
        return false;
    }
    return true;
}

} // namespace

const char *status_name(AcceptStatus status) noexcept
{
    switch (status) {
    case AcceptStatus::accepted: return "accepted";
    case AcceptStatus::continue_needed: return "continue_needed";
    case AcceptStatus::replay: return "replay";
    case AcceptStatus::expired: return "expired";
    case AcceptStatus::wrong_service: return "wrong_service";
    case AcceptStatus::bad_token: return "bad_token";
    case AcceptStatus::foreign_realm: return "foreign_realm";
    case AcceptStatus::no_local_name: return "no_local_name";
    case AcceptStatus::error: return "error";
    }
    return "error";
}

const char *describe(AcceptStatus status) noexcept
{
    switch (status) {
    case AcceptStatus::accepted: return "the ticket is valid";
    case AcceptStatus::continue_needed: return "the client asked for a second round (only one is supported)";
    case AcceptStatus::replay: return "the token is a replay";
    case AcceptStatus::expired: return "the ticket has expired or the client's clock is off";
    case AcceptStatus::wrong_service: return "the ticket is for a service whose key is not in the keytab";
    case AcceptStatus::bad_token: return "the token is not a valid Kerberos token";
    case AcceptStatus::foreign_realm: return "the principal's realm maps to no local name";
    case AcceptStatus::no_local_name: return "the principal maps to no local name";
    case AcceptStatus::error: return "the token could not be checked";
    }
    return "the token could not be checked";
}

/** Acceptor credentials, one per concurrent accept (see GssAcceptor). */
struct GssAcceptor::Credentials {
    std::mutex mutex;
    std::vector<gss::Credential> idle;

    /** A new Kerberos credential for every key of the keytab (SPNEGO is unwrapped in spnego.cpp). */
    static gss::Credential acquire(const AcceptorOptions &options, std::string &error)
    {
        std::vector<gss_key_value_element_desc> elements;
        elements.push_back({"keytab", options.keytab.c_str()});
        if (!options.rcache.empty()) {
            elements.push_back({"rcache", options.rcache.c_str()});
        }
        const gss_key_value_set_desc store = {static_cast<OM_uint32>(elements.size()), elements.data()};
        gss_OID_set_desc mech_set = {1, gss_mech_krb5};
        gss::Credential cred;
        OM_uint32 minor = 0;
        const OM_uint32 major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mech_set,
                                                      GSS_C_ACCEPT, &store, cred.out(), nullptr, nullptr);
        if (GSS_ERROR(major)) {
            error = "cannot acquire acceptor credentials from " + options.keytab + ": " +
                    gss::status_text(major, minor, GSS_C_NO_OID);
            return gss::Credential();
        }
        return cred;
    }

    gss::Credential take(const AcceptorOptions &options, std::string &error)
    {
        {
            std::lock_guard<std::mutex> lock(mutex);
            if (!idle.empty()) {
                gss::Credential cred = std::move(idle.back());
                idle.pop_back();
                return cred;
            }
        }
        return acquire(options, error);
    }

    void give_back(gss::Credential cred)
    {
        std::lock_guard<std::mutex> lock(mutex);
        idle.push_back(std::move(cred));
    }
};

GssAcceptor::GssAcceptor(AcceptorOptions options)
    : options_(std::move(options)), credentials_(std::make_unique<Credentials>())
{
}

GssAcceptor::~GssAcceptor() = default;

std::unique_ptr<GssAcceptor> GssAcceptor::create(AcceptorOptions options, std::string &error) noexcept
{
    try {
        std::unique_ptr<GssAcceptor> acceptor(new GssAcceptor(std::move(options)));
        if (acceptor->options_.local_name) {
            acceptor->default_realm_ = krb5_default_realm(error);
            if (acceptor->default_realm_.empty()) {
                error = "AuthProxyLocalName On needs a default realm: " + error;
                return nullptr;
            }
        }
        if (!check_rcache(acceptor->options_.rcache, error)) {
            return nullptr;
        }
        gss::Credential cred = Credentials::acquire(acceptor->options_, error);
        if (cred.get() == GSS_C_NO_CREDENTIAL) {
            return nullptr;
        }
        acceptor->credentials_->give_back(std::move(cred));
        return acceptor;
    }
    catch (const std::exception &e) {
        error = std::string("cannot set up the Negotiate acceptor: ") + e.what();
    }
    catch (...) {
        error = "cannot set up the Negotiate acceptor: unknown error";
    }
    return nullptr;
}

namespace {

/** Fills principal and user of an accepted token, or refuses it for want of a local name. */
void name_client(AcceptResult &result, gss_name_t client, const AcceptorOptions &options,
                 const std::string &our_realm)
{
    OM_uint32 minor = 0;
    gss::Buffer display;
    OM_uint32 major = gss_display_name(&minor, client, display.out(), nullptr);
    if (GSS_ERROR(major)) {
        result.status = AcceptStatus::error;
        result.detail = "cannot name the client: " + gss::status_text(major, minor, GSS_C_NO_OID);
        return;
    }
    result.principal = std::string(display.view());
    if (!options.local_name) {
        result.user = result.principal;
        return;
    }
    gss::Buffer local;
    major = gss_localname(&minor, client, gss_mech_krb5, local.out());
    if (GSS_ERROR(major) || local.view().empty()) {
        const std::string_view realm = realm_of(result.principal);
        result.status = realm == our_realm ? AcceptStatus::no_local_name : AcceptStatus::foreign_realm;
        result.detail = "krb5.conf maps " + result.principal + " to no local name (default realm " +
                        our_realm + ")";
        return;
    }
    result.user = std::string(local.view());
}

} // namespace

AcceptResult GssAcceptor::accept(std::string_view token) noexcept
{
    AcceptResult result;
    try {
        const InitialToken initial = read_initial_token(token);
        if (refuse_unwrapped(initial, result)) {
            return result;
        }
        accept_kerberos(initial.kerberos_token, result);
        if (initial.kind == InitialTokenKind::spnego_kerberos) {
            // Kerberos's answer (AP-REP, or a KRB-ERROR) goes back inside SPNEGO.
            const bool completed = result.status == AcceptStatus::accepted;
            result.output_token = spnego_response(completed ? NegState::accept_completed : NegState::reject,
                                                  completed ? initial.mech_oid : std::string_view(),
                                                  result.output_token);
        }
    }
    catch (const std::exception &e) {
        result = AcceptResult();
        result.detail = e.what();
    }
    catch (...) {
        result = AcceptResult();
        result.detail = "unknown error";
    }
    return result;
}

bool GssAcceptor::refuse_unwrapped(const InitialToken &initial, AcceptResult &result)
{
    switch (initial.kind) {
    case InitialTokenKind::kerberos:
    case InitialTokenKind::spnego_kerberos: return false;
    case InitialTokenKind::spnego_other:
        result.status = AcceptStatus::continue_needed;
        result.detail = "the SPNEGO token prefers another mechanism to Kerberos, or sends no Kerberos token; "
                        "only a single round with Kerberos first is supported";
        return true;
    case InitialTokenKind::spnego_no_kerberos:
        result.status = AcceptStatus::bad_token;
        result.detail = "the SPNEGO token offers no Kerberos mechanism (NTLM only?)";
        result.output_token = spnego_response(NegState::reject, {}, {});
        return true;
    case InitialTokenKind::ntlm:
        result.status = AcceptStatus::bad_token;
        result.detail = "an NTLM message: NTLM is not supported";
        return true;
    case InitialTokenKind::malformed: break;
    }
    result.status = AcceptStatus::bad_token;
    result.detail = "neither a SPNEGO nor a Kerberos token";
    return true;
}

void GssAcceptor::accept_kerberos(std::string_view token, AcceptResult &result)
{
    std::string error;
    gss::Credential cred = credentials_->take(options_, error);
    if (cred.get() == GSS_C_NO_CREDENTIAL) {
        result.status = AcceptStatus::error;
        result.detail = error;
        return;
    }
    gss_buffer_desc input = {token.size(), const_cast<char *>(token.data())};
    gss::SecurityContext context;
    gss::Name client;
    gss::Buffer output;
    OM_uint32 minor = 0;
    // No delegated credentials are asked for: a proxy has no use for them.
    const OM_uint32 major = gss_accept_sec_context(&minor, context.out(), cred.get(), &input,
                                                   GSS_C_NO_CHANNEL_BINDINGS, client.out(), nullptr,
                                                   output.out(), nullptr, nullptr, nullptr);
    credentials_->give_back(std::move(cred));
    result.output_token = std::string(output.view());
    if (major == GSS_S_COMPLETE) {
        result.status = AcceptStatus::accepted;
        name_client(result, client.get(), options_, default_realm_);
    }
    else if (major == GSS_S_CONTINUE_NEEDED) {
        // Kerberos itself needs one round; this is a DCE-style or otherwise unexpected token.
        result.status = AcceptStatus::continue_needed;
        result.detail = "the Kerberos token asks for another round; only one is supported";
    }
    else {
        result.status = classify_failure(major, minor);
        result.detail = gss::status_text(major, minor, gss_mech_krb5);
    }
}

} // namespace auth_proxy
