#include "auth_proxy_scopes.hpp"

#include "auth_proxy_config.hpp"

#include <http_config.h>
#include <http_core.h>
#include <mod_proxy.h>

namespace auth_proxy {

namespace {

void name_sections(apr_pool_t *pconf, const apr_array_header_t *sections);

/** @p section and the <Files> and <If> sections nested in it. */
void name_section(apr_pool_t *pconf, ap_conf_vector_t *section)
{
    if (section == nullptr) {
        return;
    }
    if (dir_conf(section) == nullptr) {
        ap_set_module_config(section, &auth_proxy_module, create_dir_conf(pconf, nullptr));
    }
    const auto *core = static_cast<const core_dir_config *>(ap_get_core_module_config(section));
    if (core != nullptr) {
        name_sections(pconf, core->sec_file);
        name_sections(pconf, core->sec_if);
    }
}

void name_sections(apr_pool_t *pconf, const apr_array_header_t *sections)
{
    if (sections == nullptr) {
        return;
    }
    auto *const *elts = reinterpret_cast<ap_conf_vector_t *const *>(sections->elts);
    for (int i = 0; i < sections->nelts; ++i) {
        name_section(pconf, elts[i]);
    }
}

/**
 * A vhost's defaults share the main server's DirConfig unless the vhost
 * uses our directives (httpd's merge keeps the base's pointer): a copy
 * with an identity of its own tells the vhosts apart.
 */
void name_vhost(apr_pool_t *pconf, server_rec *vhost)
{
    const DirConfig *shared = dir_conf(vhost->lookup_defaults);
    DirConfig own = shared != nullptr ? *shared : DirConfig{};
    own.scope = mix_scopes(own.scope, new_scope_id());
    ap_set_module_config(vhost->lookup_defaults, &auth_proxy_module,
                         new (apr_palloc(pconf, sizeof(DirConfig))) DirConfig(own));
}

} // namespace

void name_every_section(apr_pool_t *pconf, server_rec *main_server)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    for (server_rec *s = main_server; s != nullptr; s = s->next) {
        if (s->is_virtual) {
            name_vhost(pconf, s);
        }
        name_section(pconf, s->lookup_defaults);
        const auto *core =
            static_cast<const core_server_config *>(ap_get_core_module_config(s->module_config));
        name_sections(pconf, core->sec_dir);
        name_sections(pconf, core->sec_url);
        if (proxy != nullptr) {
            const auto *conf =
                static_cast<const proxy_server_conf *>(ap_get_module_config(s->module_config, proxy));
            if (conf != nullptr) {
                name_sections(pconf, conf->sec_proxy);
            }
        }
    }
}

StoreScope store_scope(const request_rec *r, const DirConfig &conf) noexcept
{
    // Every directory this request (or the one it came from) looked in for a
    // .htaccess file is listed, with the configuration found there, if any.
    for (const htaccess_result *h = r->htaccess; h != nullptr; h = h->next) {
        if (h->htaccess != nullptr) {
            return StoreScope{};
        }
    }
    const DirConfig *vhost = dir_conf(r->server->lookup_defaults);
    return StoreScope{mix_scopes(vhost != nullptr ? vhost->scope : 0, conf.scope), true};
}

} // namespace auth_proxy
