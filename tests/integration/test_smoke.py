"""The first thing a user tries: no credentials -> 407, right credentials -> 200."""

from harness import basic, curl, htpasswd


def test_reverse_proxy_demands_then_accepts_proxy_credentials(make_httpd, backend, server_root):
    users = f"{server_root}/users"
    htpasswd(users, "alice", "secret", "-B", "-C", "5")
    h = make_httpd(f"""
<Location /login>
    ProxyPass        {backend.url}/login
    AuthType ProxyBasic
    AuthName "Login Authentication"
    AuthUserFile {users}
    Require valid-user
</Location>
""")
    r = curl(f"{h.url}/login")
    assert r.status == 407
    assert r.header("Proxy-Authenticate") == 'Basic realm="Login Authentication", charset="UTF-8"'
    assert r.header("WWW-Authenticate") is None
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{h.url}/login")
    assert r.status == 200
    assert r.json()["path"] == "/login"
    assert "proxy-authorization" not in r.backend_headers()
