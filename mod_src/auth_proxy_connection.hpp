/**
 * @file auth_proxy_connection.hpp
 * Connections that stay authenticated (AuthProxyConnectionBound): once a
 * scheme that binds connections (Negotiate) admits a request, the later
 * requests of that connection that send no credentials are the same user,
 * as with Squid, IIS and mod_auth_gssapi's GssapiConnectionBound. Browsers
 * send a Negotiate token only when challenged, so without this every
 * request would cost a 407 round trip and a ticket check.
 *
 * Only HTTP/1.x connections are bound: an HTTP/2 stream runs on a
 * connection of its own, in parallel with its siblings, and its client
 * sends a token with each request anyway.
 */
#pragma once

#include <httpd.h>

namespace auth_proxy {

class Scheme;

/** Who a connection was authenticated as, by which scheme, with which keys. */
struct Binding {
    const Scheme *scheme;
    const void *keys; ///< what accepted the credentials (the scope's acceptor): a binding holds only there
    const char *user; ///< in the connection's pool
};

/** The binding of @p r's connection if it holds for a scope that accepts with @p keys; null: none. */
const Binding *binding_for(request_rec *r, const void *keys) noexcept;

/** Binds @p r's connection (HTTP/1.x only) to @p user, admitted by @p scheme with @p keys. */
void bind_connection(request_rec *r, const Scheme &scheme, const void *keys, const char *user) noexcept;

/** Forgets @p r's connection's binding: credentials sent on it were refused. */
void unbind_connection(request_rec *r) noexcept;

} // namespace auth_proxy
