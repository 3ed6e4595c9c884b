#include "auth_proxy_runtime.hpp"

#include "auth_proxy_log.hpp"

#include <http_log.h>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

Runtime *current_runtime = nullptr;

apr_status_t destroy_runtime(void *data)
{
    auto *rt = static_cast<Runtime *>(data);
    if (current_runtime == rt) {
        current_runtime = nullptr;
    }
    delete rt;
    return APR_SUCCESS;
}

void log_to_server(void *ctx, LogLevel level, const std::string &message)
{
    auto *s = static_cast<server_rec *>(ctx);
    switch (level) {
    case LogLevel::error:
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, APXLOGNO(02001) "%s", message.c_str());
        break;
    case LogLevel::warning:
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, APXLOGNO(02002) "%s", message.c_str());
        break;
    case LogLevel::info:
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, APXLOGNO(02003) "%s", message.c_str());
        break;
    case LogLevel::debug:
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, APXLOGNO(02004) "%s", message.c_str());
        break;
    }
}

} // namespace

Runtime &create_runtime(apr_pool_t *pconf)
{
    auto *rt = new Runtime;
    rt->pconf = pconf;
    current_runtime = rt;
    // Not run in forked children (child cleanup is null): a child never
    // frees what the parent built.
    apr_pool_cleanup_register(pconf, rt, destroy_runtime, apr_pool_cleanup_null);
    return *rt;
}

Runtime &runtime()
{
    return *current_runtime;
}

Logger server_logger(server_rec *s)
{
    return Logger{log_to_server, s};
}

} // namespace auth_proxy
