"""Authorization on top of ProxyBasic, with httpd's own Require machinery.

Users authenticate with Proxy-Authorization; mod_authz_core, mod_authz_user,
mod_authz_groupfile and mod_authz_host decide. An authenticated user that
authorization refuses is challenged again with 407 + a fresh
Proxy-Authenticate, on reverse proxies as on forward proxies (stock httpd
would send a reverse-proxy refusal as 401), unless AuthzSendForbiddenOnFailure
asks for 403. Nested <Location> sections inherit and override like any other
httpd auth configuration.
"""

import pytest

from harness import assert_challenged, basic, curl, get, proxy_basic_auth

REALM = "Staff Proxy"

ALICE = basic("alice", "alice-pw")   # groups: admins, staff
BOB = basic("bob", "bob-pw")         # groups: staff
CAROL = basic("carol", "carol-pw")   # no group
DAVE = basic("dave", "dave-pw")      # only in the second user file


@pytest.fixture
def users(make_users):
    return make_users({name: f"{name}-pw" for name in ("alice", "bob", "carol")})


@pytest.fixture
def groups(server_root):
    path = f"{server_root}/groups"
    with open(path, "w") as f:
        f.write("admins: alice\nstaff: alice bob\n")
    return path


@pytest.fixture
def other_users(make_users):
    return make_users({"dave": "dave-pw"}, name="other-users")


def assert_reached_backend(r, path):
    assert r.status == 200
    assert r.header("X-Backend") == "echo"
    assert r.json()["path"] == path


# ------------------------------------------------------------ Require providers

@pytest.fixture
def reverse(make_httpd, backend, users, groups):
    """One reverse proxy with a location per kind of Require."""
    scope = f"""    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    AuthGroupFile {groups}
"""
    return make_httpd(f"""
<Location /valid>
    ProxyPass {backend.url}/valid
{scope}    Require valid-user
</Location>
<Location /user>
    ProxyPass {backend.url}/user
{scope}    Require user bob carol
</Location>
<Location /group>
    ProxyPass {backend.url}/group
{scope}    Require group admins
</Location>
<Location /expr>
    ProxyPass {backend.url}/expr
{scope}    Require expr "%{{REMOTE_USER}} =~ /^(alice|carol)$/"
</Location>
<Location /all>
    ProxyPass {backend.url}/all
{scope}    <RequireAll>
        Require group staff
        Require expr "%{{REQUEST_METHOD}} == 'GET'"
    </RequireAll>
</Location>
<Location /any>
    ProxyPass {backend.url}/any
{scope}    <RequireAny>
        Require group admins
        Require user carol
    </RequireAny>
</Location>
<Location /ip-or-user>
    ProxyPass {backend.url}/ip-or-user
{scope}    <RequireAny>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAny>
</Location>
<Location /other-ip-or-user>
    ProxyPass {backend.url}/other-ip-or-user
{scope}    <RequireAny>
        Require ip 192.0.2.0/24
        Require user alice
    </RequireAny>
</Location>
<Location /ip-and-user>
    ProxyPass {backend.url}/ip-and-user
{scope}    <RequireAll>
        Require ip 127.0.0.1
        Require user bob
    </RequireAll>
</Location>
<Location /forbidden-on-failure>
    ProxyPass {backend.url}/forbidden-on-failure
{scope}    Require user bob
    AuthzSendForbiddenOnFailure On
</Location>
""", extra_modules=["authz_groupfile"])


def test_require_valid_user_admits_every_user_in_the_file(reverse):
    assert_challenged(get(reverse, "/valid"), REALM)
    for creds in (ALICE, BOB, CAROL):
        assert_reached_backend(get(reverse, "/valid", creds), "/valid")
    assert_challenged(get(reverse, "/valid", basic("alice", "bob-pw")), REALM)


def test_require_user_admits_the_named_users_and_challenges_the_others_with_407(reverse, backend):
    assert_reached_backend(get(reverse, "/user", BOB), "/user")
    assert_reached_backend(get(reverse, "/user", CAROL), "/user")
    before = len(backend.received)
    assert_challenged(get(reverse, "/user", ALICE), REALM)
    assert len(backend.received) == before
    assert reverse.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /user HTTP/1\.1" 407$')


def test_require_group_reads_the_authgroupfile(reverse):
    assert_reached_backend(get(reverse, "/group", ALICE), "/group")
    assert_challenged(get(reverse, "/group", BOB), REALM)     # staff, not admins
    assert_challenged(get(reverse, "/group", CAROL), REALM)   # in no group
    assert_challenged(get(reverse, "/group"), REALM)


def test_require_expr_sees_the_proxy_authenticated_user(reverse):
    assert_reached_backend(get(reverse, "/expr", ALICE), "/expr")
    assert_reached_backend(get(reverse, "/expr", CAROL), "/expr")
    assert_challenged(get(reverse, "/expr", BOB), REALM)
    assert_challenged(get(reverse, "/expr"), REALM)


def test_require_all_needs_every_condition(reverse, backend):
    assert_reached_backend(get(reverse, "/all", BOB), "/all")
    assert_challenged(get(reverse, "/all", CAROL), REALM)                       # not staff
    assert_challenged(get(reverse, "/all"), REALM)
    # A condition no user can meet (the method) is refused before anyone is
    # asked for credentials: 403, as httpd does for every auth type.
    before = len(backend.received)
    for creds in ((), ("-H", f"Proxy-Authorization: {BOB}")):
        r = curl(*creds, "-X", "DELETE", f"{reverse.url}/all")
        assert r.status == 403
        assert r.header("Proxy-Authenticate") is None
    assert len(backend.received) == before


def test_require_any_needs_one_condition(reverse):
    assert_reached_backend(get(reverse, "/any", ALICE), "/any")    # admins
    assert_reached_backend(get(reverse, "/any", CAROL), "/any")    # named user
    assert_challenged(get(reverse, "/any", BOB), REALM)
    assert_challenged(get(reverse, "/any"), REALM)


def test_require_ip_that_matches_admits_without_credentials(reverse):
    r = get(reverse, "/ip-or-user")
    assert_reached_backend(r, "/ip-or-user")
    assert reverse.wait_for_access_log(r'^127\.0\.0\.1 - "GET /ip-or-user HTTP/1\.1" 200$')


def test_require_ip_that_does_not_match_falls_back_to_the_user(reverse):
    assert_challenged(get(reverse, "/other-ip-or-user"), REALM)
    assert_reached_backend(get(reverse, "/other-ip-or-user", ALICE), "/other-ip-or-user")
    assert_challenged(get(reverse, "/other-ip-or-user", BOB), REALM)


def test_require_ip_and_user_together_need_both(reverse):
    assert_challenged(get(reverse, "/ip-and-user"), REALM)
    assert_reached_backend(get(reverse, "/ip-and-user", BOB), "/ip-and-user")
    assert_challenged(get(reverse, "/ip-and-user", ALICE), REALM)


def test_authz_send_forbidden_on_failure_gives_403_to_a_refused_user(reverse):
    r = get(reverse, "/forbidden-on-failure", ALICE)
    assert r.status == 403
    assert r.header("Proxy-Authenticate") is None
    assert r.header("X-Backend") is None
    # Without credentials it is still a proxy challenge, and the right user passes.
    assert_challenged(get(reverse, "/forbidden-on-failure"), REALM)
    assert_reached_backend(get(reverse, "/forbidden-on-failure", BOB), "/forbidden-on-failure")


# ------------------------------------------------------------ forward proxy

@pytest.fixture
def forward(make_httpd, users, groups):
    return make_httpd(f"""
ProxyRequests On
<Proxy "*">
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    AuthGroupFile {groups}
    Require group staff
</Proxy>
""", extra_modules=["authz_groupfile"])


def test_forward_proxy_challenges_a_refused_user_with_407(forward, backend):
    r = curl("-x", forward.url, "--proxy-user", "carol:carol-pw", f"{backend.url}/page")
    assert_challenged(r, REALM)
    assert backend.received == []
    r = curl("-x", forward.url, "--proxy-user", "bob:bob-pw", f"{backend.url}/page")
    assert_reached_backend(r, "/page")


def test_forward_proxy_authz_send_forbidden_on_failure_gives_403(make_httpd, backend, users):
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    Require user bob
    AuthzSendForbiddenOnFailure On
</Proxy>
""")
    r = curl("-x", h.url, "--proxy-user", "alice:alice-pw", f"{backend.url}/page")
    assert r.status == 403
    assert r.header("Proxy-Authenticate") is None
    assert backend.received == []


# ------------------------------------------------------------ ErrorDocument 407

@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_error_document_407_answers_both_missing_credentials_and_a_refused_user(
        make_httpd, backend, users, mode):
    if mode == "reverse":
        scope_open, scope_close = f"<Location /app>\n    ProxyPass {backend.url}/app\n", "</Location>"
    else:
        scope_open, scope_close = 'ProxyRequests On\n<Proxy "*">\n', "</Proxy>"
    h = make_httpd(f"""
ErrorDocument 407 "Proxy access is for bob only: ask the help desk"
{scope_open}    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    Require user bob
{scope_close}
""")

    def send(user=None):
        if mode == "reverse":
            return get(h, "/app", basic(user, f"{user}-pw") if user else None)
        return curl("-x", h.url, *(["--proxy-user", f"{user}:{user}-pw"] if user else []), f"{backend.url}/app")

    none, refused, admitted = send(), send("alice"), send("bob")
    for r in (none, refused):
        assert_challenged(r, REALM)
        assert r.body == b"Proxy access is for bob only: ask the help desk"
    assert_reached_backend(admitted, "/app")


def test_error_document_407_local_url_answers_a_refused_user(make_httpd, backend, users):
    h = make_httpd(f"""
<Location /app>
    ProxyPass {backend.url}/app
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    Require user bob
    ErrorDocument 407 /errors/proxy-login.html
</Location>
""")
    (h.root / "htdocs" / "errors").mkdir()
    (h.root / "htdocs" / "errors" / "proxy-login.html").write_text("<p>Proxy login needed</p>\n")
    for r in (get(h, "/app"), get(h, "/app", ALICE)):
        assert_challenged(r, REALM)
        assert r.body == b"<p>Proxy login needed</p>\n"
    assert_reached_backend(get(h, "/app", BOB), "/app")


# ------------------------------------------------------------ nested scopes

@pytest.fixture
def nested(make_httpd, backend, users, other_users):
    return make_httpd(f"""
<Location /app>
    ProxyPass {backend.url}/app
{proxy_basic_auth(users, REALM)}</Location>
<Location /app/bob-only>
    Require user bob
</Location>
<Location /app/billing>
    AuthName "Billing"
</Location>
<Location /app/partners>
    AuthUserFile {other_users}
</Location>
<Location /app/public>
    Require all granted
</Location>
""")


def test_inner_location_inherits_type_realm_and_file_and_replaces_require(nested):
    assert_challenged(get(nested, "/app/bob-only/x"), REALM)
    assert_reached_backend(get(nested, "/app/bob-only/x", BOB), "/app/bob-only/x")
    assert_challenged(get(nested, "/app/bob-only/x", ALICE), REALM)
    # The outer scope is unchanged by the inner one.
    assert_reached_backend(get(nested, "/app/x", ALICE), "/app/x")


def test_inner_location_with_its_own_realm_challenges_with_that_realm(nested):
    assert_challenged(get(nested, "/app/billing/x"), "Billing")
    assert_challenged(get(nested, "/app/billing/x", basic("alice", "wrong")), "Billing")
    assert_reached_backend(get(nested, "/app/billing/x", ALICE), "/app/billing/x")
    assert_challenged(get(nested, "/app/x"), REALM)


def test_inner_location_with_its_own_user_file_checks_only_that_file(nested):
    assert_reached_backend(get(nested, "/app/partners/x", DAVE), "/app/partners/x")
    assert_challenged(get(nested, "/app/partners/x", ALICE), REALM)
    assert_challenged(get(nested, "/app/x", DAVE), REALM)


def test_require_all_granted_in_an_inner_location_opens_it(nested):
    r = get(nested, "/app/public/x")
    assert_reached_backend(r, "/app/public/x")
    assert_challenged(get(nested, "/app/x"), REALM)
