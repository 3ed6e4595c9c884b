/**
 * @file auth_proxy_keytabs.hpp
 * The service keys of AuthProxyKeytab: read by the parent, as root, at
 * start, as httpd reads TLS keys, so that the User never needs to read the
 * keytab file; and the replay cache every server process shares.
 */
#pragma once

#include <apr_pools.h>
#include <httpd.h>

namespace auth_proxy {

struct Runtime;

/**
 * Reads every keytab the configuration names into @p rt (post_config, in
 * the parent, before the fork) and prepares the replay cache's directory
 * for the User. False, with a log line, if a keytab cannot be used: the
 * server does not start, as with a TLS key it cannot read.
 */
bool load_keytabs(Runtime &rt, apr_pool_t *pconf, server_rec *s) noexcept;

/**
 * `apachectl configtest` only: reads every keytab the configuration names,
 * as the start will, and logs (APX03030) each that cannot be used. False
 * if one cannot.
 */
bool check_keytabs(const Runtime &rt, server_rec *s) noexcept;

} // namespace auth_proxy
