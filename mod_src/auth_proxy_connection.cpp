#include "auth_proxy_connection.hpp"

#include "auth_proxy_log.hpp"

#include <http_config.h>

#include <apr_strings.h>

#include <cstring>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/** The connection a binding may live on: a plain one, never an HTTP/2 stream's. */
conn_rec *bindable(request_rec *r) noexcept
{
    conn_rec *c = r->connection;
    return c != nullptr && c->master == nullptr ? c : nullptr;
}

} // namespace

const Binding *binding_for(request_rec *r, const void *keys) noexcept
{
    conn_rec *c = bindable(r);
    if (c == nullptr || keys == nullptr) {
        return nullptr;
    }
    const auto *b = static_cast<const Binding *>(ap_get_module_config(c->conn_config, &auth_proxy_module));
    return b != nullptr && b->keys == keys ? b : nullptr;
}

void bind_connection(request_rec *r, const Scheme &scheme, const void *keys, const char *user) noexcept
{
    conn_rec *c = bindable(r);
    if (c == nullptr || keys == nullptr || user == nullptr) {
        return;
    }
    auto *b = static_cast<Binding *>(ap_get_module_config(c->conn_config, &auth_proxy_module));
    if (b == nullptr) {
        b = static_cast<Binding *>(apr_pcalloc(c->pool, sizeof(Binding)));
        ap_set_module_config(c->conn_config, &auth_proxy_module, b);
    }
    b->scheme = &scheme;
    b->keys = keys;
    // A client that sends a token with every request rebinds every time: the
    // connection's pool grows only when the user changes.
    if (b->user == nullptr || std::strcmp(b->user, user) != 0) {
        b->user = apr_pstrdup(c->pool, user);
    }
}

void unbind_connection(request_rec *r) noexcept
{
    conn_rec *c = bindable(r);
    if (c != nullptr) {
        ap_set_module_config(c->conn_config, &auth_proxy_module, nullptr);
    }
}

} // namespace auth_proxy
