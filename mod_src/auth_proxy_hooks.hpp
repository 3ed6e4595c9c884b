/**
 * @file auth_proxy_hooks.hpp
 * The request-time hooks: authentication and the challenge.
 */
#pragma once

#include <httpd.h>

namespace auth_proxy {

struct Runtime;

/** check_user_id (check_authn) hook for the AuthTypes of our schemes, with the process's runtime. */
int check_authn(request_rec *r, Runtime &rt) noexcept;

/** note_auth_failure hook: the challenge after an authorization refusal. */
int note_auth_failure(request_rec *r, const char *auth_type) noexcept;

/**
 * insert_error_filter hook: a 407 (401) the main request answers because a
 * subrequest in a scope of ours was refused gets that subrequest's
 * challenge, which the module that made the subrequest (mod_dir) dropped.
 */
void restore_challenge(request_rec *r) noexcept;

/**
 * fixups hook: in a scope of ours, Proxy-Authorization is removed before
 * any handler runs, so no proxy scheme (http, ajp, h2, fcgi, scgi, uwsgi,
 * balancer members, CONNECT) forwards it, unless the Proxy-Chain-Auth
 * environment variable is set; also when access was granted without a user.
 */
int keep_proxy_credentials(request_rec *r) noexcept;

} // namespace auth_proxy
