"""Proxy-Authorization belongs to the proxy, Authorization to the backend.

The echo backend reports the headers it received, so these tests see exactly
what httpd forwarded.
"""

import pytest

from harness import assert_challenged, basic, curl, proxied_location, proxy_basic_auth

BACKEND_LOGIN = basic("backend-user", "backend-password")


@pytest.fixture(params=["reverse", "forward"])
def proxy(request, make_httpd, backend, users):
    if request.param == "reverse":
        h = make_httpd(proxied_location("/app", backend.url, users))
        h.get = lambda *args: curl(*args, f"{h.url}/app")
    else:
        h = make_httpd(f'ProxyRequests On\n<Proxy "*">\n{proxy_basic_auth(users)}</Proxy>\n')
        h.get = lambda *args: curl("-x", h.url, *args, f"{backend.url}/app")
    return h


def test_proxy_authorization_is_not_forwarded_to_backend(proxy):
    r = proxy.get("-H", f"Proxy-Authorization: {basic('alice', 'secret')}")
    assert r.status == 200
    assert "proxy-authorization" not in r.backend_headers()


def test_client_authorization_reaches_backend_unchanged(proxy):
    r = proxy.get("-H", f"Proxy-Authorization: {basic('alice', 'secret')}",
                  "-H", f"Authorization: {BACKEND_LOGIN}")
    assert r.status == 200
    assert r.backend_headers().get("authorization") == [BACKEND_LOGIN]


def test_non_basic_authorization_reaches_backend_unchanged(proxy):
    r = proxy.get("-H", f"Proxy-Authorization: {basic('alice', 'secret')}",
                  "-H", "Authorization: Bearer eyJhbGciOiJub25lIn0.e30.")
    assert r.status == 200
    assert r.backend_headers().get("authorization") == ["Bearer eyJhbGciOiJub25lIn0.e30."]


def test_authorization_alone_is_not_proxy_credentials(proxy):
    # Valid proxy credentials, but in the backend's header: still 407.
    assert_challenged(proxy.get("-H", f"Authorization: {basic('alice', 'secret')}"))


def test_wrong_backend_authorization_does_not_affect_proxy_authentication(proxy):
    # The proxy never looks at Authorization when Proxy-Authorization is right.
    r = proxy.get("-H", f"Proxy-Authorization: {basic('alice', 'secret')}",
                  "-H", f"Authorization: {basic('alice', 'wrong')}")
    assert r.status == 200
    assert r.backend_headers().get("authorization") == [basic("alice", "wrong")]
