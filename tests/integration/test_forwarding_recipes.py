"""What a ProxyBasic proxy tells the server behind it (docs/recipes.md).

Proxy credentials are for this proxy: Proxy-Authorization is never passed on,
unless the operator sets httpd's own Proxy-Chain-Auth environment variable to
chain them to an upstream proxy. (The user's name, X-Forwarded-User, is
test_recipes.py's: it runs that recipe as the page has it.)
"""

import pytest

from harness import basic, curl, get, proxy_basic_auth

REALM = "Gateway"
ALICE = basic("alice", "secret")


# ------------------------------------------------------------ Proxy-Chain-Auth

@pytest.fixture
def chaining(make_httpd, backend, users):
    return make_httpd(f"""
SetEnvIf Request_URI "^/chained-if/" Proxy-Chain-Auth=On
<Location /plain/>
    ProxyPass {backend.url}/plain/
{proxy_basic_auth(users, REALM)}</Location>
<Location /chained/>
    ProxyPass {backend.url}/chained/
    SetEnv Proxy-Chain-Auth On
{proxy_basic_auth(users, REALM)}</Location>
<Location /chained-if/>
    ProxyPass {backend.url}/chained-if/
{proxy_basic_auth(users, REALM)}</Location>
<Location /by-address/>
    ProxyPass {backend.url}/by-address/
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    <RequireAny>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAny>
</Location>
<Location /plain/open/>
    Require all granted
</Location>
""")


@pytest.mark.parametrize("path", ["/chained/x", "/chained-if/x"], ids=["SetEnv", "SetEnvIf"])
def test_proxy_chain_auth_forwards_proxy_authorization(chaining, path):
    r = get(chaining, path, ALICE)
    assert r.status == 200
    assert r.backend_headers()["proxy-authorization"] == [ALICE]
    # Chaining passes on what was checked; it opens nothing.
    assert get(chaining, path).status == 407
    assert get(chaining, path, basic("alice", "wrong")).status == 407


@pytest.mark.parametrize("path", ["/by-address/x", "/plain/open/x"], ids=["Require_ip", "Require_all_granted"])
def test_proxy_authorization_is_not_forwarded_when_access_needs_no_user(chaining, path):
    # The client sends proxy credentials although this scope admits it without
    # them: they were still meant for this proxy, not for the backend.
    r = get(chaining, path, ALICE)
    assert r.status == 200
    assert "proxy-authorization" not in r.backend_headers()


def test_forward_proxy_chains_proxy_authorization_only_with_proxy_chain_auth(make_httpd, backend, users):
    h = make_httpd(f"""
ProxyRequests On
SetEnvIf Request_URI "/chained/" Proxy-Chain-Auth=On
<Proxy "*">
{proxy_basic_auth(users, REALM)}</Proxy>
""")
    r = curl("-x", h.url, "--proxy-user", "alice:secret", f"{backend.url}/plain/x")
    assert r.status == 200
    assert "proxy-authorization" not in r.backend_headers()
    r = curl("-x", h.url, "--proxy-user", "alice:secret", f"{backend.url}/chained/x")
    assert r.status == 200
    assert r.backend_headers()["proxy-authorization"] == [ALICE]

