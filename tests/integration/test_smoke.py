"""The first thing a user tries: no credentials -> 407, right credentials -> 200."""

from harness import assert_challenged, basic, curl


def test_reverse_proxy_demands_then_accepts_proxy_credentials(make_httpd, backend, users):
    h = make_httpd(f"""
<Location /login>
    ProxyPass        {backend.url}/login
    AuthType ProxyBasic
    AuthName "Login Authentication"
    AuthUserFile {users}
    Require valid-user
</Location>
""")
    assert_challenged(curl(f"{h.url}/login"), "Login Authentication")
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{h.url}/login")
    assert r.status == 200
    assert r.json()["path"] == "/login"
    assert "proxy-authorization" not in r.backend_headers()
