/**
 * @file auth_proxy_scopes.hpp
 * Names the configuration a request's authn providers answer under.
 *
 * A provider's directives (AuthDBMUserFile, AuthLDAPURL, ...) belong to
 * other modules and are merged per request, so the module cannot read them.
 * It can name them: every configuration section carries a DirConfig of ours
 * with an identity of its own, and merging mixes the identities in order, so
 * the DirConfig a request ends with names exactly the sections it matched
 * (and its vhost), which is all that decided every other module's merged
 * configuration. .htaccess files are parsed per request, without a DirConfig
 * of ours unless they use our directives, so where one took part the scope
 * is unknown and the stores are asked every time.
 */
#pragma once

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/config.hpp"

#include <httpd.h>

namespace auth_proxy {

/**
 * Gives every section of the configuration a DirConfig of ours where it has
 * none: <Directory>, <Location>, <Files> and <If> (nested ones too),
 * <Proxy>, and each vhost's defaults, which also get an identity of their
 * own. Run in post_config, once the vhosts have been merged.
 */
void name_every_section(apr_pool_t *pconf, server_rec *main_server);

/** The scope @p r's checking stores answer in, @p conf being its merged DirConfig. */
StoreScope store_scope(const request_rec *r, const DirConfig &conf) noexcept;

} // namespace auth_proxy
