#include "auth_proxy_providers.hpp"

#include "auth_proxy_runtime.hpp"

#include <ap_provider.h>

#include <apr_strings.h>

#include <cstring>

namespace auth_proxy {

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

bool StoreChain::build(request_rec *r, Runtime &rt, const char *list, UserFile *file, const Logger &log,
                       std::string &error)
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
