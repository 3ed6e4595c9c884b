// Error texts of MIT krb5 and the GSS-API, for operators' log lines.

#include "krb5_handles.hpp"

namespace auth_proxy::krb5 {

Context new_context(std::string &error) noexcept
{
    krb5_context context = nullptr;
    const krb5_error_code code = krb5_init_context(&context);
    if (code != 0) {
        // krb5_init_context() fails on a broken krb5.conf; the code says which way.
        error = "cannot start Kerberos (krb5.conf): " + error_text(nullptr, code);
        return Context();
    }
    return Context(context);
}

std::string error_text(krb5_context context, krb5_error_code code)
{
    const char *message = krb5_get_error_message(context, code);
    std::string text = message != nullptr ? message : "unknown Kerberos error";
    krb5_free_error_message(context, message);
    return text;
}

} // namespace auth_proxy::krb5

namespace auth_proxy::gss {

namespace {

/** Appends every message gss_display_status() has for @p code, joined by "; ". */
void append_messages(std::string &text, OM_uint32 code, int type, gss_OID mech)
{
    OM_uint32 more = 0;
    do {
        OM_uint32 minor = 0;
        Buffer message;
        if (GSS_ERROR(gss_display_status(&minor, code, type, mech, &more, message.out()))) {
            break;
        }
        if (!text.empty() && text.back() != ' ') {
            text += "; ";
        }
        text += message.view();
    } while (more != 0);
}

} // namespace

std::string status_text(OM_uint32 major, OM_uint32 minor, gss_OID mech) noexcept
{
    try {
        std::string text;
        // "Unspecified GSS failure. Minor code may provide more information" adds nothing to
        // the minor text.
        if (GSS_ROUTINE_ERROR(major) != GSS_S_FAILURE || minor == 0) {
            append_messages(text, major, GSS_C_GSS_CODE, GSS_C_NO_OID);
        }
        if (minor != 0) {
            text += text.empty() ? "" : ": ";
            append_messages(text, minor, GSS_C_MECH_CODE, mech);
        }
        return text;
    }
    catch (...) {
        return "GSS-API error (no text)";
    }
}

} // namespace auth_proxy::gss
