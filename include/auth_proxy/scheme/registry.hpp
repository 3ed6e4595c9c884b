/**
 * @file registry.hpp
 * The schemes the module offers, found by their AuthType. The one list is
 * in registry.cpp: a new scheme is one line there.
 */
#pragma once

#include "auth_proxy/scheme/scheme.hpp"

#include <string_view>

namespace auth_proxy {

/** The scheme whose AuthType is @p auth_type (case-insensitive, as httpd compares it); null: not ours. */
const Scheme *scheme_for_auth_type(std::string_view auth_type) noexcept;

/** The scheme whose AuthType @p auth_type is a near miss of (see is_near_miss()); null: none. */
const Scheme *scheme_nearly_named(const char *auth_type) noexcept;

/**
 * What a scope whose AuthType is @p scheme's offers: that scheme first,
 * then, if the scope has password stores (@p has_stores), every scheme that
 * checks passwords, in registry order.
 */
SchemeSet offered_by(const Scheme &scheme, bool has_stores) noexcept;

} // namespace auth_proxy
