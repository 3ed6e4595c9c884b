"""Every way httpd decides to proxy a request speaks proxy authentication.

ProxyPassMatch, a server-level RewriteRule with [P] and a balancer:// target
all mark the request as proxied before authentication runs, so a ProxyBasic
scope over them answers 407 + Proxy-Authenticate and reads
Proxy-Authorization, exactly like a plain ProxyPass.
"""

import pytest

from harness import Backend, assert_challenged, basic, get, proxy_basic_auth

REALM = "Gateway"
ALICE = basic("alice", "secret")


def test_proxypassmatch_target_demands_proxy_credentials(make_httpd, backend, users):
    h = make_httpd(f"""
ProxyPassMatch "^/orders/([0-9]+)$" "{backend.url}/api/order/$1"
<LocationMatch "^/orders/">
{proxy_basic_auth(users, REALM)}</LocationMatch>
""")
    assert_challenged(get(h, "/orders/42"), REALM)
    assert_challenged(get(h, "/orders/42", basic("alice", "wrong")), REALM)
    assert backend.received == []
    r = get(h, "/orders/42", ALICE)
    assert r.status == 200
    assert r.json()["path"] == "/api/order/42"
    assert "proxy-authorization" not in r.backend_headers()
    assert h.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /orders/42 HTTP/1\.1" 200$')


def test_server_level_rewrite_rule_with_p_flag_demands_proxy_credentials(make_httpd, backend, users):
    h = make_httpd(f"""
RewriteEngine On
RewriteRule "^/shop/(.*)$" "{backend.url}/store/$1" [P]
<Location /shop>
{proxy_basic_auth(users, REALM)}</Location>
""")
    assert_challenged(get(h, "/shop/cart"), REALM)
    assert backend.received == []
    r = get(h, "/shop/cart", ALICE)
    assert r.status == 200
    assert r.json()["path"] == "/store/cart"
    assert "proxy-authorization" not in r.backend_headers()


def test_balancer_members_are_reached_only_with_proxy_credentials(make_httpd, backend, users):
    second = Backend()
    try:
        h = make_httpd(f"""
<Proxy "balancer://pool">
    BalancerMember "{backend.url}"
    BalancerMember "{second.url}"
    ProxySet lbmethod=byrequests
</Proxy>
<Location /lb>
    ProxyPass "balancer://pool/lb"
{proxy_basic_auth(users, REALM)}</Location>
""", extra_modules=["proxy_balancer", "lbmethod_byrequests", "slotmem_shm"])
        for _ in range(4):
            assert_challenged(get(h, "/lb/x"), REALM)
        assert backend.received == [] and second.received == []
        for _ in range(4):
            r = get(h, "/lb/x", ALICE)
            assert r.status == 200
            assert r.json()["path"] == "/lb/x"
            assert "proxy-authorization" not in r.backend_headers()
        # byrequests spreads the authenticated requests over both members.
        assert len(backend.received) == 2 and len(second.received) == 2
    finally:
        second.stop()


# ------------------------------------------- proxied only after authentication
# A RewriteRule [P] inside <Location>/<Directory> is applied in mod_rewrite's
# fixup, and SetHandler "proxy:..." in mod_proxy's handler: both after
# authentication, when the request still looks local. By default such a
# scope therefore asks for Authorization (401); AuthProxyChallenge proxy makes
# it speak proxy authentication whatever decides to proxy the request.

def late_proxy_config(backend, users, challenge: str = "") -> str:
    return f"""
<Location /late-rewrite>
    RewriteEngine On
    RewriteRule "^.*/late-rewrite/(.*)$" "{backend.url}/store/$1" [P]
{proxy_basic_auth(users, REALM)}    {challenge}
</Location>
<Location /late-handler>
    SetHandler "proxy:{backend.url}"
{proxy_basic_auth(users, REALM)}    {challenge}
</Location>
"""


# SetHandler "proxy:URL" forwards the mapped file name (as for PHP-FPM).
@pytest.mark.parametrize("path, backend_path", [("/late-rewrite/cart", "/store/cart"),
                                                ("/late-handler/cart", "/htdocs/late-handler")])
def test_auth_proxy_challenge_proxy_covers_requests_proxied_after_authentication(
        make_httpd, backend, users, path, backend_path):
    h = make_httpd(late_proxy_config(backend, users, "AuthProxyChallenge proxy"))
    assert_challenged(get(h, path), REALM)
    assert_challenged(get(h, path, basic("alice", "wrong")), REALM)
    # Authorization is not proxy credentials, here either.
    assert_challenged(get(h, path, ALICE, header="Authorization"), REALM)
    assert backend.received == []
    r = get(h, path, ALICE, "-H", "Authorization: Bearer for-the-backend")
    assert r.status == 200
    assert r.json()["path"].endswith(backend_path)
    headers = r.backend_headers()
    assert "proxy-authorization" not in headers
    assert headers.get("authorization") == ["Bearer for-the-backend"]
    assert h.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {path} HTTP/1\.1" 200$')


@pytest.mark.parametrize("path", ["/late-rewrite/cart", "/late-handler/cart"])
def test_without_the_directive_requests_proxied_after_authentication_are_asked_as_local(
        make_httpd, backend, users, path):
    h = make_httpd(late_proxy_config(backend, users))
    assert_challenged(get(h, path), REALM, local=True)
    assert backend.received == []


def test_auth_proxy_challenge_rejects_other_values(make_httpd, backend, users):
    h = make_httpd(late_proxy_config(backend, users, "AuthProxyChallenge always"), start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert "AuthProxyChallenge: 'always' is neither 'auto' nor 'proxy'" in result.stderr
