#include "auth_proxy/scheme/registry.hpp"

#include "auth_proxy/config.hpp"
#include "auth_proxy/scheme/basic/basic_scheme.hpp"
#include "auth_proxy/scheme/negotiate/negotiate_scheme.hpp"

#include <iterator>

namespace auth_proxy {

namespace {

const BasicScheme basic;
const NegotiateScheme negotiate;

/** Every scheme, one line each; the order of the challenges where a scope offers several. */
const Scheme *const kSchemes[] = {
    &basic,
    &negotiate,
};

} // namespace

const Scheme *scheme_for_auth_type(std::string_view auth_type) noexcept
{
    for (const Scheme *s : kSchemes) {
        if (same_token(auth_type, s->auth_type())) {
            return s;
        }
    }
    return nullptr;
}

const Scheme *scheme_nearly_named(const char *auth_type) noexcept
{
    for (const Scheme *s : kSchemes) {
        // auth_type() names are literals: NUL-terminated.
        if (is_near_miss(auth_type, s->auth_type().data())) {
            return s;
        }
    }
    return nullptr;
}

SchemeSet offered_by(const Scheme &scheme, bool has_stores) noexcept
{
    SchemeSet set(scheme);
    if (has_stores) {
        for (const Scheme *s : kSchemes) {
            if (s->checks_passwords()) {
                set.add(*s);
            }
        }
    }
    return set;
}

} // namespace auth_proxy
