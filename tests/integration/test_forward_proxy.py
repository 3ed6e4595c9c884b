"""A forward proxy (ProxyRequests On, <Proxy "*">) under ProxyBasic, driven by curl -x.

Absolute-URI requests and CONNECT tunnels (mod_proxy_connect) both get 407 +
Proxy-Authenticate until curl --proxy-user sends the right credentials; then
the request or tunnel reaches the backend and the access log names the user.
Each case runs with and without mod_authn_file.
"""

import pytest

from harness import assert_challenged, curl, proxy_basic_auth

REALM = "Corporate Proxy"


@pytest.fixture
def proxy(make_httpd, backend, users, authn_file):
    h = make_httpd(f"""
ProxyRequests On
AllowCONNECT {backend.port}
<Proxy "*">
{proxy_basic_auth(users, REALM)}</Proxy>
""", authn_file=authn_file, extra_modules=["proxy_connect"])
    h.proxy_url = f"http://127.0.0.1:{h.port}"
    return h


def test_absolute_uri_request_without_credentials_gets_407(proxy, backend):
    r = curl("-x", proxy.proxy_url, f"{backend.url}/page")
    assert_challenged(r, REALM)
    assert b"<title>407 Proxy Authentication Required</title>" in r.body


def test_absolute_uri_request_with_wrong_password_gets_407(proxy, backend):
    r = curl("-x", proxy.proxy_url, "--proxy-user", "alice:wrong", f"{backend.url}/page")
    assert_challenged(r, REALM)


def test_absolute_uri_request_with_credentials_reaches_backend_as_the_user(proxy, backend):
    r = curl("-x", proxy.proxy_url, "--proxy-user", "alice:secret", f"{backend.url}/page?q=1")
    assert r.status == 200
    assert r.json()["path"] == "/page?q=1"
    assert "proxy-authorization" not in r.backend_headers()
    assert proxy.wait_for_access_log(
        rf'^127\.0\.0\.1 alice "GET {backend.url}/page\?q=1 HTTP/1\.1" 200$')


def test_connect_without_credentials_gets_407_and_no_tunnel(proxy, backend):
    r = curl("-p", "-x", proxy.proxy_url, f"{backend.url}/tunnelled")
    assert_challenged(r, REALM)
    assert proxy.wait_for_access_log(rf'^127\.0\.0\.1 - "CONNECT 127\.0\.0\.1:{backend.port} HTTP/1\.1" 407$')


def test_connect_with_wrong_password_gets_407(proxy, backend):
    r = curl("-p", "-x", proxy.proxy_url, "--proxy-user", "alice:wrong", f"{backend.url}/tunnelled")
    assert_challenged(r, REALM)


def test_connect_with_credentials_opens_the_tunnel_as_the_user(proxy, backend):
    r = curl("-p", "-x", proxy.proxy_url, "--proxy-user", "alice:secret", f"{backend.url}/tunnelled")
    assert r.status == 200
    assert r.json()["path"] == "/tunnelled"
    # Inside the tunnel the backend sees exactly what curl sent: no proxy credentials.
    assert "proxy-authorization" not in r.backend_headers()
    assert proxy.wait_for_access_log(rf'^127\.0\.0\.1 alice "CONNECT 127\.0\.0\.1:{backend.port} HTTP/1\.1" 200$')
