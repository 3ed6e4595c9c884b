#include "auth_proxy_hooks.hpp"

#include "auth_proxy/basic_credentials.hpp"
#include "auth_proxy/challenge.hpp"
#include "auth_proxy/password_hash.hpp"
#include "auth_proxy_config.hpp"
#include "auth_proxy_log.hpp"
#include "auth_proxy_runtime.hpp"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_core.h> // ap_response_code_string

#include <apr_strings.h>

#include <cstring>
#include <exception>
#include <string.h> // explicit_bzero

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

constexpr const char *kAuthType = "ProxyBasic";

bool is_proxy_basic(const char *type) noexcept
{
    return type != nullptr && strcasecmp(type, kAuthType) == 0;
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

void set_challenge(request_rec *r, bool proxied)
{
    const char *realm = ap_auth_name(r);
    const std::string challenge = basic_challenge(realm != nullptr ? unescape_quotes(realm) : "");
    apr_table_setn(r->err_headers_out, proxied ? "Proxy-Authenticate" : "WWW-Authenticate",
                   apr_pstrmemdup(r->pool, challenge.data(), challenge.size()));
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
                       apr_pstrmemdup(main->pool, challenge.data(), challenge.size()));
    }
}

/** 407 + Proxy-Authenticate for proxied requests, 401 + WWW-Authenticate otherwise. */
int challenge(request_rec *r, bool proxied)
{
    set_challenge(r, proxied);
    return proxied ? HTTP_PROXY_AUTHENTICATION_REQUIRED : HTTP_UNAUTHORIZED;
}

/** Holds the decoded pair; wiped however the request leaves the hook. */
struct CredentialBuffer {
    char bytes[kCredentialBufferSize];
    ~CredentialBuffer() { explicit_bzero(bytes, sizeof bytes); }
};

int authenticate(request_rec *r)
{
    if (!is_proxy_basic(ap_auth_type(r))) {
        return DECLINED;
    }
    const DirConfig *conf = dir_conf(r->per_dir_config);
    const bool proxied = is_proxied(r);

    if (ap_auth_name(r) == nullptr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01001)
                      "AuthName not specified for AuthType ProxyBasic at %s; refusing the request",
                      r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (conf->user_file == nullptr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01002)
                      "AuthUserFile not specified for AuthType ProxyBasic at %s; refusing the request",
                      r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    const char *header_name = proxied ? "Proxy-Authorization" : "Authorization";
    const char *header = apr_table_get(r->headers_in, header_name);
    if (header == nullptr) {
        // The normal first step of every client: not worth an error line.
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "no %s header: sending a challenge", header_name);
        return challenge(r, proxied);
    }

    CredentialBuffer buffer;
    BasicCredentials creds;
    const CredentialError parse_error = parse_basic_credentials(header, buffer.bytes, sizeof buffer.bytes, creds);
    if (parse_error != CredentialError::none) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01003)
                      "malformed %s header for \"%s\": %s", header_name, r->uri, describe(parse_error));
        return challenge(r, proxied);
    }

    Runtime &rt = runtime();
    const auto state = conf->user_file->state(server_logger(r->server));
    if (!state->index) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01004)
                      "%s; refusing user %s", state->error.c_str(), creds.user.data());
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    const auto entry = state->index->find(creds.user);
    if (entry == nullptr) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01005)
                      "user %s not found in %s: \"%s\"", creds.user.data(),
                      conf->user_file->path().c_str(), r->uri);
        return challenge(r, proxied);
    }
    if (entry->format == HashFormat::unknown) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, APXLOGNO(01006)
                      "user %s in %s has a password that is not a recognised hash; refusing: \"%s\"",
                      creds.user.data(), conf->user_file->path().c_str(), r->uri);
        return challenge(r, proxied);
    }

    CredentialCache *cache = rt.cache.get();
    CacheKey key{};
    bool verified = false;
    if (cache != nullptr && cache->enabled()) {
        key = cache->key_for(creds.user, creds.password, entry->hash);
        verified = cache->contains(key, Clock::now());
    }
    if (!verified) {
        if (!verify_password(creds.password.data(), entry->hash, entry->format)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01007)
                          "user %s: authentication failure for \"%s\": Password Mismatch",
                          creds.user.data(), r->uri);
            return challenge(r, proxied);
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, APXLOGNO(01010)
                      "user %s: password verified against its %s hash", creds.user.data(),
                      format_name(entry->format));
        if (cache != nullptr && cache->enabled()) {
            cache->remember(key, Clock::now()); // successes only: a guesser always pays the hash
        }
    }

    r->user = apr_pstrmemdup(r->pool, creds.user.data(), creds.user.size());
    r->ap_auth_type = const_cast<char *>(kAuthType);
    return OK;
}

} // namespace

int check_authn(request_rec *r) noexcept
{
    try {
        return authenticate(r);
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
    if (!is_proxy_basic(auth_type)) {
        return DECLINED;
    }
    try {
        const bool proxied = is_proxied(r);
        set_challenge(r, proxied);
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
    const char *challenge = apr_table_get(r->notes, proxy ? kProxyChallengeNote : kOriginChallengeNote);
    if (challenge != nullptr && apr_table_get(r->err_headers_out, header) == nullptr) {
        apr_table_setn(r->err_headers_out, header, challenge);
    }
}

int keep_proxy_credentials(request_rec *r) noexcept
{
    // mod_proxy drops Proxy-Authorization itself when r->user is set (on its
    // own copy of the headers). A scope that admits the client without
    // authenticating it (or mod_dir's index redirect, which leaves r->user
    // empty) would otherwise pass the client's proxy password on.
    if (r->user == nullptr && is_proxied(r) && is_proxy_basic(ap_auth_type(r)) &&
        apr_table_get(r->subprocess_env, "Proxy-Chain-Auth") == nullptr) {
        apr_table_unset(r->headers_in, "Proxy-Authorization");
    }
    return DECLINED;
}

} // namespace auth_proxy
