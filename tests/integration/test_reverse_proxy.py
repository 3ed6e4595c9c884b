"""Every way httpd reverse-proxies a request demands proxy credentials in a ProxyBasic scope.

ProxyPass inside <Location>, ProxyPass at server level, ProxyPassMatch and a
server-level RewriteRule [P] all produce a proxied request. Without valid
credentials each one gets 407 + Proxy-Authenticate and httpd's own 407 page,
never a 401; with them the backend answers and the access log names the user.
Each set-up runs with mod_authn_file loaded (Debian's default, both modules
see AuthUserFile) and without it.
"""

import pytest

from harness import assert_challenged, basic, curl, proxy_basic_auth


def location_proxypass(backend, users):
    return f"""
<Location /app>
    ProxyPass        {backend.url}/app
    ProxyPassReverse {backend.url}/app
{proxy_basic_auth(users)}</Location>
"""


def server_proxypass(backend, users):
    return f"""
ProxyPass        /app {backend.url}/app
ProxyPassReverse /app {backend.url}/app
<Location /app>
{proxy_basic_auth(users)}</Location>
"""


def proxypassmatch(backend, users):
    return f"""
ProxyPassMatch ^/app/(.*)$ {backend.url}/app/$1
<LocationMatch ^/app/>
{proxy_basic_auth(users)}</LocationMatch>
"""


def rewrite_proxy_flag(backend, users):
    return f"""
RewriteEngine On
RewriteRule ^/app/(.*)$ {backend.url}/app/$1 [P]
<Location /app>
{proxy_basic_auth(users)}</Location>
"""


SETUPS = [location_proxypass, server_proxypass, proxypassmatch, rewrite_proxy_flag]


@pytest.fixture(params=SETUPS, ids=lambda f: f.__name__)
def setup(request):
    return request.param


@pytest.fixture
def proxy(make_httpd, backend, users, setup, authn_file):
    return make_httpd(setup(backend, users), authn_file=authn_file)


def test_request_without_credentials_gets_407_with_proxy_challenge(proxy):
    r = curl(f"{proxy.url}/app/page")
    assert_challenged(r)
    # httpd's own error page for 407, not a 401 page under a 407 status.
    assert b"<title>407 Proxy Authentication Required</title>" in r.body
    assert b"This server could not verify that you\nare authorized" in r.body


def test_valid_proxy_credentials_reach_backend_as_the_user(proxy):
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{proxy.url}/app/page?x=1")
    assert r.status == 200
    assert r.header("X-Backend") == "echo"
    assert r.json()["path"] == "/app/page?x=1"
    # r->user is set: mod_log_config's %u shows it.
    assert proxy.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /app/page\?x=1 HTTP/1\.1" 200$')


def test_wrong_password_gets_407_again(proxy):
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'wrong')}", f"{proxy.url}/app/page")
    assert_challenged(r)


def test_unknown_user_gets_407(proxy):
    r = curl("-H", f"Proxy-Authorization: {basic('mallory', 'secret')}", f"{proxy.url}/app/page")
    assert_challenged(r)


def test_authorization_header_alone_gets_407(proxy):
    # curl --user sends Authorization, which belongs to the backend: not proxy credentials.
    r = curl("--user", "alice:secret", f"{proxy.url}/app/page")
    assert_challenged(r)


def test_authenticated_request_has_auth_type_proxybasic(make_httpd, backend, users, authn_file):
    h = make_httpd(f"""
<Location /app>
    ProxyPass {backend.url}/app
{proxy_basic_auth(users)}    RequestHeader set X-Seen-Auth "expr=%{{AUTH_TYPE}} %{{REMOTE_USER}}"
</Location>
""", authn_file=authn_file)
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{h.url}/app")
    assert r.status == 200
    assert r.backend_headers()["x-seen-auth"] == ["ProxyBasic alice"]
