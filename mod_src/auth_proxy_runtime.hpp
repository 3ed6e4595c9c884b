/**
 * @file auth_proxy_runtime.hpp
 * The process-wide state of mod_auth_proxy: the user files, the credential
 * cache and the reload thread. One instance per configuration cycle, owned
 * by pconf.
 */
#pragma once

#include "auth_proxy/credential_cache.hpp"
#include "auth_proxy/file_watcher.hpp"
#include "auth_proxy/log.hpp"
#include "auth_proxy_config.hpp"

#include <memory>
#include <vector>

namespace auth_proxy {

/** A section that set AuthType ProxyBasic or AuthUserFile, for configtest. */
struct ScopeRecord {
    server_rec *server;
    const char *path;       ///< section argument as httpd stores it; NULL at server level
    const char *where;      ///< "file:line"
    DirConfig *conf;
};

struct Runtime {
    apr_pool_t *pconf = nullptr;
    server_rec *server = nullptr; ///< for log lines outside requests; set in post_config
    UserFileRegistry files;
    std::unique_ptr<CredentialCache> cache;
    std::unique_ptr<FileWatcher> watcher;
    std::vector<ScopeRecord> scopes;
};

/** Creates the runtime for a new configuration cycle (pre_config). */
Runtime &create_runtime(apr_pool_t *pconf);

/** The runtime of the current cycle; exists from pre_config on. */
Runtime &runtime();

/** A Logger that writes to the error log of @p s (NULL: the main server). */
Logger server_logger(server_rec *s);

} // namespace auth_proxy
