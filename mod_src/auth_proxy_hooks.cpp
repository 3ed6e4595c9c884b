#include "auth_proxy_hooks.hpp"

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/scheme/challenge.hpp"
#include "auth_proxy/scheme/registry.hpp"
#include "auth_proxy_config.hpp"
#include "auth_proxy_connection.hpp"
#include "auth_proxy_log.hpp"
#include "auth_proxy_providers.hpp"
#include "auth_proxy_runtime.hpp"
#include "auth_proxy_scopes.hpp"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_core.h> // ap_response_code_string

#include <apr_strings.h>

#include <atomic>
#include <cstring>
#include <exception>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

/** The scheme of ours that @p type names; null: another module's (or none). */
const Scheme *scheme_named(const char *type) noexcept
{
    return type != nullptr ? scheme_for_auth_type(type) : nullptr;
}

/**
 * Whether the request speaks proxy authentication (Proxy-Authorization,
 * 407): any request mod_proxy will forward, reverse (ProxyPass, [P]) or
 * forward, and every request of a scope with AuthProxyChallenge proxy.
 */
bool is_proxied(const request_rec *r) noexcept
{
    return r->proxyreq != PROXYREQ_NONE || dir_conf(r->per_dir_config)->always_proxy == 1;
}

constexpr const char *kProxyChallengeNote = "auth_proxy:Proxy-Authenticate";
constexpr const char *kOriginChallengeNote = "auth_proxy:WWW-Authenticate";

/** One challenge header per scheme of @p offered, in its order. */
void set_challenge(request_rec *r, const SchemeSet &offered, bool proxied)
{
    const char *header = proxied ? "Proxy-Authenticate" : "WWW-Authenticate";
    const char *realm = ap_auth_name(r);
    const std::string unescaped = realm != nullptr ? unescape_quotes(realm) : "";
    apr_table_unset(r->err_headers_out, header);
    std::string all; // for a subrequest's main request: the challenges, one a line
    for (const Scheme *scheme : offered) {
        const std::string challenge = scheme->challenge(unescaped);
        apr_table_addn(r->err_headers_out, header, apr_pstrmemdup(r->pool, challenge.data(), challenge.size()));
        all += all.empty() ? "" : "\n";
        all += challenge;
    }
    if (r->main != nullptr) {
        // A subrequest's headers reach the client only if the module that
        // made it copies them; mod_dir, for one, answers the main request
        // with the subrequest's 407 but not its challenge. Remember the
        // challenge on the main request (in its own pool: the subrequest's
        // may be gone by then) for restore_challenge().
        request_rec *main = r->main;
        while (main->main != nullptr) {
            main = main->main;
        }
        apr_table_setn(main->notes, proxied ? kProxyChallengeNote : kOriginChallengeNote,
                       apr_pstrmemdup(main->pool, all.data(), all.size()));
    }
}

/** 407 + Proxy-Authenticate for proxied requests, 401 + WWW-Authenticate otherwise. */
int challenge(request_rec *r, const SchemeSet &offered, bool proxied)
{
    set_challenge(r, offered, proxied);
    return proxied ? HTTP_PROXY_AUTHENTICATION_REQUIRED : HTTP_UNAUTHORIZED;
}

/** The scope's user file (if any): set up at start, or (.htaccess) looked up now. */
UserFile *user_file_of(Runtime &rt, const DirConfig *conf)
{
    if (conf->user_file != nullptr) {
        return conf->user_file;
    }
    return conf->user_file_path != nullptr ? &rt.files.get(conf->user_file_path) : nullptr;
}

/** Whether a scheme of @p offered checks passwords against the scope's stores. */
bool checks_passwords(const SchemeSet &offered) noexcept
{
    for (const Scheme *s : offered) {
        if (s->checks_passwords()) {
            return true;
        }
    }
    return false;
}

/** Whether a scheme of @p offered accepts tickets with the scope's service keys. */
bool uses_service_keys(const SchemeSet &offered) noexcept
{
    for (const Scheme *s : offered) {
        if (s->uses_service_keys()) {
            return true;
        }
    }
    return false;
}

/** What a scope of @p scheme offers: with password stores named (the default is the user file), Basic too. */
SchemeSet offered_schemes(const Scheme &scheme, const DirConfig *conf)
{
    return offered_by(scheme, conf->providers != nullptr || conf->user_file_path != nullptr);
}

/**
 * Proxy credentials never travel further than the proxy: once they have
 * been refused (or an error ends the request), not to an ErrorDocument
 * that is itself proxied either. Internal redirects share headers_in.
 */
void forget_proxy_credentials(request_rec *r, bool proxied)
{
    if (proxied) {
        apr_table_unset(r->headers_in, "Proxy-Authorization");
    }
}

/** At most one line a minute per process about a full throttle table: a flood of new clients fills it. */
bool time_to_log(std::atomic<std::int64_t> &last) noexcept
{
    constexpr std::int64_t kEveryUs = 60 * 1000 * 1000LL;
    const std::int64_t now = apr_time_now();
    std::int64_t seen = last.load(std::memory_order_relaxed);
    return now - seen >= kEveryUs && last.compare_exchange_strong(seen, now, std::memory_order_relaxed);
}

std::atomic<std::int64_t> last_full_refusal{0};
std::atomic<std::int64_t> last_uncounted{0};
std::atomic<std::int64_t> last_shed{0};

/** "this address", or "this address's /48" when the lockout is its prefix's. */
const char *locked_subject(request_rec *r, const Verdict &v)
{
    if (v.reason == Reason::user_locked) {
        return "anywhere for this user";
    }
    return v.locked_prefix == 0 ? "this address" : apr_psprintf(r->pool, "this address's /%u", v.locked_prefix);
}

/** The client as APX01011 names it: its address, or the IPv6 prefix that is locked out. */
const char *locked_client(request_rec *r, const Verdict &v)
{
    if (v.counted.locked_prefix == 0) {
        return r->useragent_ip;
    }
    const std::string prefix = ClientAddress::parse(r->useragent_ip).prefix_string(v.counted.locked_prefix);
    return apr_pstrdup(r->pool, prefix.c_str());
}

/**
 * A refusal, logged so that fail2ban's stock apache-auth filter reads it:
 * that filter allows nothing but an "AH\d+: " prefix before "user X: ...",
 * so these lines carry our number at the end instead.
 */
void log_refusal(request_rec *r, const Verdict &v, const char *header_name, const StoreChain &chain)
{
    // A token names its user only once it is accepted: "-" until then, which
    // fail2ban's apache-auth filter reads like any other user.
    const char *user = v.user.empty() ? "-" : apr_pstrmemdup(r->pool, v.user.data(), v.user.size());
    switch (v.reason) {
    case Reason::malformed:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01003)
                      "malformed %s header for \"%s\": %s", header_name, r->uri,
                      v.detail.empty() ? describe(v.parse_error) : v.detail.c_str());
        break;
    case Reason::replayed:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": a token seen before, replayed (APX01061)",
                      user, r->uri);
        break;
    case Reason::ticket_expired:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": ticket expired or clocks too far apart: %s "
                      "(APX01062)",
                      user, r->uri, v.detail.c_str());
        break;
    case Reason::wrong_service:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": a ticket for a service whose key AuthProxyKeytab "
                      "does not hold: %s (APX01063)",
                      user, r->uri, v.detail.c_str());
        break;
    case Reason::no_local_name:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": the principal has no local name: %s "
                      "(AuthProxyLocalName) (APX01064)",
                      user, r->uri, v.detail.c_str());
        break;
    case Reason::unknown_user:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "user %s not found in %s: \"%s\" (APX01005)", user,
                      chain.names().c_str(), r->uri);
        break;
    case Reason::unusable_entry:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": the password hash in %s is unusable: %s (APX01006)",
                      user, r->uri, chain.name_of(v.store).c_str(), v.detail.c_str());
        break;
    case Reason::wrong_password:
        if (chain.is_file(v.store)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01015)
                          "user %s: password checked against its %s hash: no match", user, format_name(v.format));
        }
        else {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01018)
                          "user %s: authn provider %s refused the password", user, chain.name_of(v.store).c_str());
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": Password Mismatch (APX01007)", user, r->uri);
        break;
    case Reason::repeated_failure:
        if (v.scheme != nullptr && !v.scheme->checks_passwords()) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "user %s: authentication failure for \"%s\": the same refused token again (APX01066)",
                          user, r->uri);
            break;
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": Password Mismatch, the same as before (APX01013)",
                      user, r->uri);
        break;
    case Reason::address_locked:
    case Reason::user_locked:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: authentication failure for \"%s\": too many failed logins from %s, "
                      "refused for %ld s more (APX01012)",
                      user, r->uri, locked_subject(r, v), static_cast<long>(v.retry_after.count()));
        break;
    case Reason::throttle_full:
        // Not the client's doing, so not a line for fail2ban: one a minute for the operator.
        if (time_to_log(last_full_refusal)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01040)
                          "throttle table full: no room to count a failed login from %s, so its requests are "
                          "refused with 429 for %ld s (raise AuthProxyThrottleEntries; this line at most once a "
                          "minute per process)",
                          r->useragent_ip, static_cast<long>(v.retry_after.count()));
        }
        break;
    default:
        break;
    }
    if (v.dummy) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01014)
                      "user %s: dummy verification against a %s hash of cost %u (%s)", user, format_name(v.format),
                      v.cost, describe(v.reason));
    }
    if (v.counted.unrecorded && time_to_log(last_uncounted)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01041)
                      "throttle table full: a failed login from %s (user %s) found no room in the throttle "
                      "table and went partly uncounted (raise AuthProxyThrottleEntries; this line at most once a "
                      "minute per process)",
                      r->useragent_ip, user);
    }
    if (v.counted.address_locked_now || v.counted.user_locked_now) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01011)
                      "%s %s locked out for %ld s after %u distinct failed logins within %ld s (last user %s)",
                      v.counted.address_locked_now ? "client" : "user",
                      v.counted.address_locked_now ? locked_client(r, v) : user,
                      static_cast<long>(v.lockout.lasts.count()), v.lockout.limit,
                      static_cast<long>(v.lockout.window.count()),
                      user);
    }
}

int authenticate(request_rec *r, Runtime &rt)
{
    const char *auth_type = ap_auth_type(r);
    const Scheme *scheme = scheme_named(auth_type);
    if (scheme == nullptr) {
        return DECLINED;
    }
    const DirConfig *conf = dir_conf(r->per_dir_config);
    const bool proxied = is_proxied(r);
    const SchemeSet offered = offered_schemes(*scheme, conf);

    // The realm is what a password scheme's challenge names (Negotiate has none).
    if (checks_passwords(offered) && ap_auth_name(r) == nullptr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01001)
                      "AuthName not specified for AuthType %s at %s; refusing the request", auth_type, r->uri);
        forget_proxy_credentials(r, proxied);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    StoreChain chain;
    std::string missing;
    if (checks_passwords(offered) &&
        !chain.build(r, rt, conf->providers, user_file_of(rt, conf), conf->keytab_path, server_logger(r->server),
                     missing)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01002)
                      "%s for AuthType %s at %s; refusing the request", missing.c_str(), auth_type, r->uri);
        forget_proxy_credentials(r, proxied);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rt.watcher) {
        chain.follow_changes(); // files are reloaded: a change counts once it is on disk
    }
    GssAcceptor *acceptor = nullptr;
    if (uses_service_keys(offered) && conf->keytab_path != nullptr) {
        std::string error;
        acceptor = rt.acceptor(conf->keytab_path, conf->local_name != 0, error);
        if (acceptor == nullptr) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01065)
                          "Kerberos acceptor for AuthType %s at %s: %s; refusing the request", auth_type, r->uri,
                          error.c_str());
            forget_proxy_credentials(r, proxied);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    const char *header_name = proxied ? "Proxy-Authorization" : "Authorization";
    AuthRequest request;
    request.header = apr_table_get(r->headers_in, header_name);
    request.client = ClientAddress::parse(r->useragent_ip != nullptr ? r->useragent_ip : "");
    request.now = Now::current();
    request.scope = store_scope(r, *conf);
    request.stores = chain.stores();
    request.store_count = chain.size();
    request.acceptor = acceptor;
    const bool binding = conf->connection_bound != 0;
    if (request.header == nullptr && binding) {
        const Binding *b = binding_for(r, acceptor);
        if (b != nullptr && rt.throttle) {
            // A locked-out address is refused on every connection, bound ones too.
            const Throttle::Lock lock = rt.throttle->check(request.client, b->user, request.now);
            if (lock.locked) {
                unbind_connection(r);
                b = nullptr;
            }
        }
        if (b != nullptr) {
            // The connection was authenticated by a token this scope's keys accepted.
            r->user = apr_pstrdup(r->pool, b->user);
            r->ap_auth_type = const_cast<char *>(b->scheme->auth_type().data());
            if (rt.metrics) {
                Verdict bound;
                bound.outcome = Outcome::admitted;
                rt.metrics->count(bound);
            }
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "user %s: admitted by the connection's earlier token",
                          r->user);
            return OK;
        }
    }
    CredentialBuffer buffer;
    const Verdict v = rt.authenticator->authenticate(offered, request, buffer);
    if (rt.metrics) {
        rt.metrics->count(v);
    }

    switch (v.outcome) {
    case Outcome::admitted:
        if (!v.scheme->checks_passwords()) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01060) "user %s: %.*s credentials of %s accepted",
                          buffer.bytes, static_cast<int>(v.scheme->token().size()), v.scheme->token().data(),
                          v.detail.c_str());
            r->user = apr_pstrmemdup(r->pool, v.user.data(), v.user.size());
        }
        else if (v.verified && chain.is_file(v.store)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01010)
                          "user %s: password verified against its %s hash", buffer.bytes, format_name(v.format));
        }
        else if (v.verified) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01017)
                          "user %s: authn provider %s granted the password", buffer.bytes,
                          chain.name_of(v.store).c_str());
        }
        if (v.scheme->checks_passwords() && (r->user == nullptr || v.cache_hit || chain.is_file(v.store))) {
            r->user = apr_pstrmemdup(r->pool, v.user.data(), v.user.size());
        }
        // The scheme that admitted, in the spelling of its AuthType (a literal).
        r->ap_auth_type = const_cast<char *>(v.scheme->auth_type().data());
        if (binding && v.scheme->binds_connection()) {
            bind_connection(r, *v.scheme, acceptor, r->user);
        }
        else {
            unbind_connection(r); // the connection's last login speaks for it, not an earlier one
        }
        return OK;
    case Outcome::challenged:
        // The normal first step of every client: not worth an error line.
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "no %s header: sending a challenge", header_name);
        return challenge(r, offered, proxied);
    case Outcome::refused:
        unbind_connection(r);
        log_refusal(r, v, header_name, chain);
        forget_proxy_credentials(r, proxied);
        return challenge(r, offered, proxied);
    case Outcome::throttled:
        unbind_connection(r);
        log_refusal(r, v, header_name, chain);
        forget_proxy_credentials(r, proxied);
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%ld", static_cast<long>(v.retry_after.count())));
        return HTTP_TOO_MANY_REQUESTS;
    case Outcome::shed:
        // A flood's doing, not this client's: no line for fail2ban, one a minute for the operator.
        if (time_to_log(last_shed)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01050)
                          "every hash verification slot stayed busy for %ld ms: request from %s for user %s "
                          "answered 503 without checking its password (AuthProxyVerifyLimit, "
                          "AuthProxyVerifyWait; this line at most once a minute per process)",
                          static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(v.waited).count()),
                          r->useragent_ip, apr_pstrmemdup(r->pool, v.user.data(), v.user.size()));
        }
        forget_proxy_credentials(r, proxied);
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%ld", static_cast<long>(v.retry_after.count())));
        return HTTP_SERVICE_UNAVAILABLE;
    case Outcome::failed:
        break;
    }
    const char *user = v.user.empty() ? "-" : apr_pstrmemdup(r->pool, v.user.data(), v.user.size());
    if (v.reason == Reason::store_error) {
        // The provider has said why in its own line.
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01016)
                      "authn provider %s could not check user %s for \"%s\"; refusing the request",
                      v.detail.c_str(), user, r->uri);
    }
    else if (v.reason == Reason::acceptor_error) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01065)
                      "Kerberos acceptor for AuthType %s at %s: %s; refusing the request", ap_auth_type(r), r->uri,
                      v.detail.c_str());
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01004) "%s; refusing user %s", v.detail.c_str(), user);
    }
    forget_proxy_credentials(r, proxied);
    return HTTP_INTERNAL_SERVER_ERROR;
}

} // namespace

int check_authn(request_rec *r, Runtime &rt) noexcept
{
    try {
        return authenticate(r, rt);
    }
    catch (const std::exception &e) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01008)
                      "internal error while authenticating \"%s\": %s", r->uri, e.what());
    }
    catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01008)
                      "internal error while authenticating \"%s\"", r->uri);
    }
    return HTTP_INTERNAL_SERVER_ERROR;
}

int note_auth_failure(request_rec *r, const char *auth_type) noexcept
{
    const Scheme *scheme = scheme_named(auth_type);
    if (scheme == nullptr) {
        return DECLINED;
    }
    try {
        const bool proxied = is_proxied(r);
        set_challenge(r, offered_schemes(*scheme, dir_conf(r->per_dir_config)), proxied);
        // Refused by authorization: the request ends here, and its (valid)
        // proxy credentials must not reach a proxied ErrorDocument.
        forget_proxy_credentials(r, proxied);
        if (proxied) {
            // Authorization refused an authenticated user and the request dies
            // with 401 next. ap_die() turns 401 into 407 only for forward
            // proxies; this request is not forwarded anywhere any more, so let
            // it count as one and get the same proxy challenge.
            r->proxyreq = PROXYREQ_PROXY;
            // ap_die() looks up the ErrorDocument of the 401 it was given;
            // point that at ErrorDocument 407 if the operator set one.
            const char *doc = ap_response_code_string(r, ap_index_of_response(HTTP_PROXY_AUTHENTICATION_REQUIRED));
            if (doc != nullptr) {
                ap_custom_response(r, HTTP_UNAUTHORIZED, doc[0] == '"' ? doc + 1 : doc);
            }
        }
    }
    catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01009) "could not set the authentication challenge");
    }
    return OK;
}

void restore_challenge(request_rec *r) noexcept
{
    // Only a 407/401 that one of our subrequest challenges led to, and only
    // if nothing else put a challenge on the response.
    const bool proxy = r->status == HTTP_PROXY_AUTHENTICATION_REQUIRED;
    if (r->main != nullptr || !(proxy || r->status == HTTP_UNAUTHORIZED)) {
        return;
    }
    const char *header = proxy ? "Proxy-Authenticate" : "WWW-Authenticate";
    const char *challenges = apr_table_get(r->notes, proxy ? kProxyChallengeNote : kOriginChallengeNote);
    if (challenges == nullptr || apr_table_get(r->err_headers_out, header) != nullptr) {
        return;
    }
    // One a line, as set_challenge() noted them.
    for (const char *line = challenges; *line != '\0';) {
        const char *end = std::strchr(line, '\n');
        const std::size_t n = end != nullptr ? static_cast<std::size_t>(end - line) : std::strlen(line);
        apr_table_addn(r->err_headers_out, header, apr_pstrmemdup(r->pool, line, n));
        line += end != nullptr ? n + 1 : n;
    }
}

int keep_proxy_credentials(request_rec *r) noexcept
{
    // mod_proxy drops Proxy-Authorization itself only in the HTTP header
    // builder (mod_proxy_http, mod_proxy_wstunnel) and only when r->user is
    // set; mod_proxy_ajp and mod_proxy_http2 copy every request header, and
    // mod_proxy_fcgi, _scgi and _uwsgi pass it as HTTP_PROXY_AUTHORIZATION
    // under CGIPassAuth. So in a scope of ours it goes here, before any
    // handler, whatever admitted the request and whatever scheme follows,
    // unless the operator chains credentials with Proxy-Chain-Auth.
    if (scheme_named(ap_auth_type(r)) != nullptr && apr_table_get(r->subprocess_env, "Proxy-Chain-Auth") == nullptr) {
        apr_table_unset(r->headers_in, "Proxy-Authorization");
    }
    return DECLINED;
}

} // namespace auth_proxy
