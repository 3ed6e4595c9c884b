#include "auth_proxy_providers.hpp"

#include "auth_proxy_runtime.hpp"

#include "auth_proxy_log.hpp"

#include <ap_provider.h>
#include <http_log.h>

#include <apr_strings.h>

#include <cstring>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/**
 * The KerberosStore's own lines, in front of the refusal or the 500 that
 * follows: why the KDC turned a user away, or why its answer was not
 * trusted.
 */
void log_kerberos_problem(void *ctx, KerberosProblem problem, std::string_view user, const std::string &detail)
{
    const auto *where = static_cast<const StoreChain::KerberosLog *>(ctx);
    request_rec *r = where->r;
    const int length = static_cast<int>(user.size());
    switch (problem) {
    case KerberosProblem::password_expired:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01070)
                      "user %.*s: the KDC refuses the login: the password has expired (%s); it must be changed "
                      "(kpasswd) before the proxy can admit it",
                      length, user.data(), detail.c_str());
        break;
    case KerberosProblem::principal_locked:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01071)
                      "user %.*s: the KDC refuses the login: the principal is disabled, locked out or expired (%s)",
                      length, user.data(), detail.c_str());
        break;
    case KerberosProblem::kdc_failed:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01072)
                      "user %.*s: no answer from the KDC on the password: %s", length, user.data(), detail.c_str());
        break;
    case KerberosProblem::not_verified:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01073)
                      "user %.*s: the KDC accepted the password, but its ticket could not be verified with the keys "
                      "of AuthProxyKeytab %s (%s): a KDC that does not hold the realm's keys (spoofed?) or a keytab "
                      "out of date; not admitted",
                      length, user.data(), where->keytab != nullptr ? where->keytab : "(none)", detail.c_str());
        break;
    case KerberosProblem::none:
        break;
    }
}

} // namespace

const authn_provider *find_authn_provider(const char *name) noexcept
{
    const auto *provider =
        static_cast<const authn_provider *>(ap_lookup_provider(AUTHN_PROVIDER_GROUP, name, AUTHN_PROVIDER_VERSION));
    return provider != nullptr && provider->check_password != nullptr ? provider : nullptr;
}

CheckAnswer ProviderStore::check(std::string_view user, const char *password)
{
    // As mod_auth_basic calls providers: r->user already set (some read it),
    // the provider's name in the notes (an alias finds its configuration
    // by it). A provider may put another name into r->user on success
    // (AuthLDAPRemoteUserAttribute): that one stays, and as a cached answer
    // could not give it, such a grant is not cached.
    char *sent = apr_pstrmemdup(r_->pool, user.data(), user.size());
    r_->user = sent;
    apr_table_setn(r_->notes, AUTHN_PROVIDER_NAME_NOTE, name_);
    const authn_status status = provider_->check_password(r_, sent, password);
    apr_table_unset(r_->notes, AUTHN_PROVIDER_NAME_NOTE);
    if (status != AUTH_GRANTED) {
        r_->user = nullptr;
    }
    switch (status) {
    case AUTH_GRANTED:
        if (r_->user == nullptr || std::strcmp(r_->user, sent) != 0) {
            return CheckAnswer::granted_uncacheable;
        }
        return CheckAnswer::granted;
    case AUTH_DENIED:
        return CheckAnswer::denied;
    case AUTH_USER_NOT_FOUND:
        return CheckAnswer::user_not_found;
    default:
        return CheckAnswer::error; // AUTH_GENERAL_ERROR, and AUTH_HANDLED, which a Basic check never expects
    }
}

bool StoreChain::build(request_rec *r, Runtime &rt, const char *list, UserFile *file, const char *keytab,
                       const Logger &log, std::string &error)
{
    auto add_file = [&]() {
        if (file == nullptr) {
            error = "AuthUserFile not specified";
            return false;
        }
        if (!file_state_) {
            file_state_ = file->state(log);
            file_ = file;
        }
        stores_[count_++] = Store{file_state_.get(), nullptr};
        return true;
    };
    if (list == nullptr) {
        return add_file();
    }
    char *names = apr_pstrdup(r->pool, list);
    for (char *name = names; name != nullptr && *name != '\0' && count_ < kMaxProviders;) {
        char *space = std::strchr(name, ' ');
        if (space != nullptr) {
            *space = '\0';
        }
        if (std::strcmp(name, kFileProvider) == 0) {
            if (!add_file()) {
                return false;
            }
        }
        else if (std::strcmp(name, kKerberosProvider) == 0) {
            const auto keys = keytab != nullptr ? rt.keytabs.find(keytab) : rt.keytabs.end();
            if (keys == rt.keytabs.end() || !keys->second) {
                error = keytab == nullptr ? "AuthProxyKeytab not specified (AuthProxyProvider kerberos verifies "
                                            "tickets with it)"
                                          : std::string("the keys of AuthProxyKeytab ") + keytab + " are not loaded";
                return false;
            }
            kerberos_log_ = KerberosLog{r, keytab};
            kerberos_ = KerberosStore(kKerberosProvider, keys->second.get(), &rt.answer_time(kKerberosProvider),
                                      KerberosReport{log_kerberos_problem, &kerberos_log_});
            stores_[count_++] = Store{nullptr, &kerberos_};
        }
        else {
            const authn_provider *provider = find_authn_provider(name);
            if (provider == nullptr) {
                error = std::string("authn provider ") + name + " is not registered";
                return false;
            }
            providers_[count_] = ProviderStore(r, name, provider, &rt.answer_time(name));
            stores_[count_] = Store{nullptr, &providers_[count_]};
            ++count_;
        }
        name = space != nullptr ? space + 1 : nullptr;
    }
    return true;
}

void StoreChain::follow_changes() noexcept
{
    if (file_ == nullptr || !file_->behind(*file_state_)) {
        return;
    }
    for (std::size_t i = 0; i < count_; ++i) {
        if (stores_[i].file != nullptr) {
            stores_[i].changed = file_;
        }
    }
}

std::string StoreChain::name_of(int i) const
{
    if (i < 0 || static_cast<std::size_t>(i) >= count_) {
        return std::string();
    }
    return stores_[i].file != nullptr ? file_->path() : std::string(stores_[i].checker->name());
}

std::string StoreChain::names() const
{
    std::string out;
    for (std::size_t i = 0; i < count_; ++i) {
        out += (i == 0 ? "" : ", ") + name_of(static_cast<int>(i));
    }
    return out;
}

} // namespace auth_proxy
