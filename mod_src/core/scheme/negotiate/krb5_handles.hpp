/**
 * @file krb5_handles.hpp
 * Owners for MIT krb5 and GSS-API handles, so that every exit path of the
 * Negotiate core and of the kerberos store releases what it acquired.
 * Private to the core.
 */
#pragma once

#include <gssapi/gssapi.h>
#include <krb5.h>

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace auth_proxy::krb5 {

struct ContextFree {
    void operator()(krb5_context context) const noexcept { krb5_free_context(context); }
};
/** A krb5_context, used by one thread at a time (MIT's rule for contexts). */
using Context = std::unique_ptr<std::remove_pointer_t<krb5_context>, ContextFree>;

/** A new context, or nullptr with @p error set to why not. */
Context new_context(std::string &error) noexcept;

/** The text of a krb5 error code, with the extended message the library kept in @p context. */
std::string error_text(krb5_context context, krb5_error_code code);

/** A krb5_principal, freed with the context it was made in. */
class Principal {
public:
    explicit Principal(krb5_context context) noexcept : context_(context) {}
    ~Principal() { krb5_free_principal(context_, principal_); }
    Principal(const Principal &) = delete;
    Principal &operator=(const Principal &) = delete;
    krb5_principal get() const noexcept { return principal_; }
    krb5_principal *out() noexcept { return &principal_; }

private:
    krb5_context context_;
    krb5_principal principal_ = nullptr;
};

/** A keytab handle, closed with the context it was resolved in. */
class Keytab {
public:
    explicit Keytab(krb5_context context) noexcept : context_(context) {}
    ~Keytab() { reset(); }
    Keytab(const Keytab &) = delete;
    Keytab &operator=(const Keytab &) = delete;
    krb5_keytab get() const noexcept { return keytab_; }
    krb5_keytab *out() noexcept { return &keytab_; }
    void reset() noexcept
    {
        if (keytab_ != nullptr) {
            krb5_kt_close(context_, keytab_);
            keytab_ = nullptr;
        }
    }

private:
    krb5_context context_;
    krb5_keytab keytab_ = nullptr;
};

/** The options of one AS exchange, freed with the context they were made in. */
class InitOptions {
public:
    explicit InitOptions(krb5_context context) noexcept : context_(context) {}
    ~InitOptions() { krb5_get_init_creds_opt_free(context_, options_); }
    InitOptions(const InitOptions &) = delete;
    InitOptions &operator=(const InitOptions &) = delete;
    krb5_get_init_creds_opt *get() const noexcept { return options_; }
    krb5_get_init_creds_opt **out() noexcept { return &options_; }

private:
    krb5_context context_;
    krb5_get_init_creds_opt *options_ = nullptr;
};

/** Credentials filled by an AS exchange; their contents freed with the context. */
class Credentials {
public:
    explicit Credentials(krb5_context context) noexcept : context_(context) {}
    ~Credentials() { krb5_free_cred_contents(context_, &creds_); }
    Credentials(const Credentials &) = delete;
    Credentials &operator=(const Credentials &) = delete;
    krb5_creds *get() noexcept { return &creds_; }

private:
    krb5_context context_;
    krb5_creds creds_{};
};

} // namespace auth_proxy::krb5

namespace auth_proxy::gss {

/** A buffer the GSS-API allocated (output tokens, display texts). */
class Buffer {
public:
    Buffer() noexcept = default;
    ~Buffer()
    {
        OM_uint32 minor = 0;
        gss_release_buffer(&minor, &buffer_);
    }
    Buffer(const Buffer &) = delete;
    Buffer &operator=(const Buffer &) = delete;
    gss_buffer_t out() noexcept { return &buffer_; }
    std::string_view view() const noexcept
    {
        return {static_cast<const char *>(buffer_.value), buffer_.length};
    }

private:
    gss_buffer_desc buffer_ = GSS_C_EMPTY_BUFFER;
};

/** A gss_name_t. */
class Name {
public:
    Name() noexcept = default;
    ~Name()
    {
        OM_uint32 minor = 0;
        gss_release_name(&minor, &name_);
    }
    Name(const Name &) = delete;
    Name &operator=(const Name &) = delete;
    gss_name_t get() const noexcept { return name_; }
    gss_name_t *out() noexcept { return &name_; }

private:
    gss_name_t name_ = GSS_C_NO_NAME;
};

/** A security context, deleted with nothing sent to the peer. */
class SecurityContext {
public:
    SecurityContext() noexcept = default;
    ~SecurityContext()
    {
        OM_uint32 minor = 0;
        gss_delete_sec_context(&minor, &context_, GSS_C_NO_BUFFER);
    }
    SecurityContext(const SecurityContext &) = delete;
    SecurityContext &operator=(const SecurityContext &) = delete;
    gss_ctx_id_t *out() noexcept { return &context_; }

private:
    gss_ctx_id_t context_ = GSS_C_NO_CONTEXT;
};

/** An acceptor credential. */
class Credential {
public:
    Credential() noexcept = default;
    explicit Credential(gss_cred_id_t cred) noexcept : cred_(cred) {}
    ~Credential() { reset(); }
    Credential(Credential &&other) noexcept : cred_(other.cred_) { other.cred_ = GSS_C_NO_CREDENTIAL; }
    Credential &operator=(Credential &&other) noexcept
    {
        if (this != &other) {
            reset();
            cred_ = other.cred_;
            other.cred_ = GSS_C_NO_CREDENTIAL;
        }
        return *this;
    }
    Credential(const Credential &) = delete;
    Credential &operator=(const Credential &) = delete;
    gss_cred_id_t get() const noexcept { return cred_; }
    gss_cred_id_t *out() noexcept { return &cred_; }
    void reset() noexcept
    {
        OM_uint32 minor = 0;
        gss_release_cred(&minor, &cred_);
    }

private:
    gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
};

/**
 * "<major text>: <minor text>", every message gss_display_status() has for
 * the pair, e.g. "Unspecified GSS failure.  Minor code may provide more
 * information: Request is a replay".
 */
std::string status_text(OM_uint32 major, OM_uint32 minor, gss_OID mech) noexcept;

} // namespace auth_proxy::gss
