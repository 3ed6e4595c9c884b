/**
 * @file auth_proxy_config.hpp
 * Per-directory and per-server configuration of mod_auth_proxy.
 */
#pragma once

#include <httpd.h>
#include <http_config.h>

#include "auth_proxy/config.hpp"

/** The module struct: the only symbol the shared object exports. */
extern "C" __attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA auth_proxy_module;

namespace auth_proxy {

extern const command_rec directives[];

void *create_dir_conf(apr_pool_t *pool, char *path);
void *merge_dir_conf(apr_pool_t *pool, void *base, void *add);
void *create_server_conf(apr_pool_t *pool, server_rec *s);
void *merge_server_conf(apr_pool_t *pool, void *base, void *add);

/** The main server's process-wide settings, defaults applied. */
ServerConfig effective_settings(server_rec *main_server);

inline DirConfig *dir_conf(ap_conf_vector_t *v)
{
    return static_cast<DirConfig *>(ap_get_module_config(v, &auth_proxy_module));
}

} // namespace auth_proxy
