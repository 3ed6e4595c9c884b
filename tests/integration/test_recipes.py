"""The recipes of docs/recipes.md marked "tested as written", run as written.

Each configuration is read from the page (harness.doc_recipe), with this
test's ports, backends and files in place of the host names and paths the
page shows, so the page and the test cannot drift apart. The real httpd
runs it; curl is the client; the backends are real servers on loopback
that record what they receive.
"""

from __future__ import annotations

import socket

import pytest

from harness import Backend, assert_challenged, basic, curl, doc_recipe, get, self_signed_cert
from recording_backends import HttpRecorder, UpstreamProxyRecorder

USERS = "/etc/apache2/proxy-users"
ALICE = basic("alice", "secret")
BOB = basic("bob", "bob-pw")


@pytest.fixture
def users(make_users):
    return make_users({"alice": "secret", "bob": "bob-pw"})


@pytest.fixture
def backends():
    """Factory of extra echo backends, stopped after the test."""
    started: list[Backend] = []

    def factory() -> Backend:
        started.append(Backend())
        return started[-1]
    yield factory
    for b in started:
        b.stop()


def run_recipe(make_httpd, name: str, replace: dict, extra: str = "", extra_modules: tuple = ()):
    """Starts httpd with recipe @p name, plus test-only @p extra configuration and modules,
    loading only the modules the recipe's LoadModule lines and the page's preamble name."""
    recipe = doc_recipe(name, replace)
    return make_httpd(recipe.config + extra, extra_modules=recipe.modules + list(extra_modules), minimal=True)


# ------------------------------------------------------------ office network, mod_remoteip

OFFICE_CLIENT = "192.168.10.20"
OUTSIDE_CLIENT = "203.0.113.7"


@pytest.fixture
def office(make_httpd, backend, users):
    # The balancer is this test's curl on 127.0.0.1; a client reaching the
    # server directly connects from 127.0.0.2. Two distinct failures lock an
    # address out, to see whose address the throttle counts.
    return run_recipe(make_httpd, "office-network", {
        "RemoteIPInternalProxy 10.0.0.5": "RemoteIPInternalProxy 127.0.0.1",
        "http://app.internal:8080": backend.url,
        USERS: users,
    }, extra="AuthProxyThrottleFailures 2\n")


def via_balancer(h, client: str, *args):
    return curl("-H", f"X-Forwarded-For: {client}", *args, f"{h.url}/app/x")


def test_office_client_forwarded_by_the_balancer_passes_without_credentials(office, backend):
    r = via_balancer(office, OFFICE_CLIENT)
    assert r.status == 200
    assert r.json()["path"] == "/app/x"
    assert office.wait_for_access_log(rf'^{OFFICE_CLIENT} - "GET /app/x HTTP/1\.1" 200$')


def test_outside_client_forwarded_by_the_balancer_must_authenticate(office, backend):
    assert_challenged(via_balancer(office, OUTSIDE_CLIENT), "Staff Proxy")
    assert backend.received == []
    r = via_balancer(office, OUTSIDE_CLIENT, "-H", f"Proxy-Authorization: {ALICE}")
    assert r.status == 200
    assert "proxy-authorization" not in r.backend_headers()
    assert office.wait_for_access_log(rf'^{OUTSIDE_CLIENT} alice "GET /app/x HTTP/1\.1" 200$')


def test_office_address_claimed_by_anyone_but_the_balancer_is_not_believed(office, backend):
    direct = curl("--interface", "127.0.0.2", "-H", f"X-Forwarded-For: {OFFICE_CLIENT}", f"{office.url}/app/x")
    assert_challenged(direct, "Staff Proxy")
    # An outside client's own header passes the balancer, which appends the real address.
    assert_challenged(via_balancer(office, f"{OFFICE_CLIENT}, {OUTSIDE_CLIENT}"), "Staff Proxy")
    assert backend.received == []


def test_throttle_locks_out_the_client_behind_the_balancer_not_the_balancer(office):
    for password in ("guess-1", "guess-2"):
        assert via_balancer(office, OUTSIDE_CLIENT, "-H",
                            f"Proxy-Authorization: {basic('alice', password)}").status == 407
    locked = via_balancer(office, OUTSIDE_CLIENT, "-H", f"Proxy-Authorization: {ALICE}")
    assert locked.status == 429
    assert int(locked.header("Retry-After")) > 0
    assert via_balancer(office, "203.0.113.8", "-H", f"Proxy-Authorization: {ALICE}").status == 200
    assert via_balancer(office, OFFICE_CLIENT).status == 200


# ------------------------------------------------------------ per-user destinations, forward proxy

@pytest.fixture
def destinations(make_httpd, backends, users, server_root):
    """The recipe with a wiki, a billing server, a host nobody is given, an
    https port and an ssh port: each an echo backend on its own port."""
    groups = f"{server_root}/groups"
    with open(groups, "w") as f:
        f.write(doc_recipe("per-user-destinations groups").config)
    rig = {name: backends() for name in ("wiki", "billing", "unlisted", "https", "ssh")}
    host = {name: rf"127\.0\.0\.1:{b.port}" for name, b in rig.items()}
    rig["proxy"] = run_recipe(make_httpd, "per-user-destinations", {
        USERS: users,
        "/etc/apache2/proxy-groups": groups,
        r"wiki\.example\.com(:80)?": host["wiki"],
        r"billing\.example\.com(:80)?": host["billing"],
        "AllowCONNECT 443 22": f"AllowCONNECT {rig['https'].port} {rig['ssh'].port}",
        '"^[^/]+:443$"': f'"^[^/]+:{rig["https"].port}$"',
        '"^[^/]+:22$"': f'"^[^/]+:{rig["ssh"].port}$"',
    })
    return rig


def through(rig, target: Backend, *args, tunnel: bool = False):
    """curl through the forward proxy to @p target: an absolute-URI request, or with @p tunnel a CONNECT."""
    return curl(*(["-p"] if tunnel else []), "-x", rig["proxy"].url, *args, f"{target.url}/page")


def test_listed_destination_asks_for_credentials(destinations):
    assert_challenged(through(destinations, destinations["wiki"]), "Corporate Proxy")
    assert destinations["wiki"].received == []


def test_each_user_reaches_the_destinations_listed_for_them(destinations):
    for user in ("alice:secret", "bob:bob-pw"):
        r = through(destinations, destinations["wiki"], "--proxy-user", user)
        assert r.status == 200
        assert "proxy-authorization" not in r.backend_headers()
    assert through(destinations, destinations["billing"], "--proxy-user", "alice:secret").status == 200
    assert destinations["wiki"].paths() == ["/page", "/page"]
    assert destinations["billing"].paths() == ["/page"]


def test_user_refused_by_a_destination_is_challenged_again(destinations):
    r = through(destinations, destinations["billing"], "--proxy-user", "bob:bob-pw")
    assert_challenged(r, "Corporate Proxy")
    assert destinations["billing"].received == []
    assert destinations["proxy"].wait_for_access_log(
        rf'^127\.0\.0\.1 bob "GET {destinations["billing"].url}/page HTTP/1\.1" 407$')


@pytest.mark.parametrize("credentials", [[], ["--proxy-user", "alice:secret"]], ids=["none", "alice"])
def test_unlisted_destination_is_refused_before_anyone_is_asked(destinations, credentials):
    for target in ("unlisted", "https"):    # https: a tunnel port, but not a tunnel
        r = through(destinations, destinations[target], *credentials)
        assert r.status == 403
        assert r.header("Proxy-Authenticate") is None
        assert destinations[target].received == []


def test_tunnels_follow_the_rules_of_their_port(destinations):
    https, ssh = destinations["https"], destinations["ssh"]
    assert_challenged(through(destinations, https, tunnel=True), "Corporate Proxy")
    r = through(destinations, https, "--proxy-user", "alice:secret", tunnel=True)
    assert r.status == 200
    assert r.json()["path"] == "/page"
    assert_challenged(through(destinations, ssh, "--proxy-user", "alice:secret", tunnel=True), "Corporate Proxy")
    assert ssh.received == []
    assert through(destinations, ssh, "--proxy-user", "bob:bob-pw", tunnel=True).status == 200
    assert ssh.paths() == ["/page"]
    # A port no tunnel rule names: refused before credentials.
    r = through(destinations, destinations["wiki"], "--proxy-user", "alice:secret", tunnel=True)
    assert r.status == 403
    assert destinations["wiki"].received == []


# ------------------------------------------------------------ CONNECT only to 443

@pytest.fixture
def https_target(server_root):
    recorder = HttpRecorder(tls=self_signed_cert(f"{server_root}/tls"))
    yield recorder
    recorder.stop()


@pytest.fixture
def other_port():
    """A listening port that must never see a connection."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener


def connection_attempted(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.fixture
def connect_443(make_httpd, users, https_target):
    return run_recipe(make_httpd, "connect-443-only", {
        "AllowCONNECT 443": f"AllowCONNECT {https_target.port}",
        USERS: users,
    })


def test_connect_to_the_https_port_opens_the_tunnel_after_authentication(connect_443, https_target):
    url = f"https://127.0.0.1:{https_target.port}/inside"
    assert_challenged(curl("-k", "-x", connect_443.url, url), "Corporate Proxy")
    assert https_target.exchanges == []
    r = curl("-k", "-x", connect_443.url, "--proxy-user", "alice:secret", url)
    assert r.status == 200
    [seen] = https_target.wait_for(1)
    assert (seen.method, seen.path) == ("GET", "/inside")
    assert connect_443.wait_for_access_log(
        rf'^127\.0\.0\.1 alice "CONNECT 127\.0\.0\.1:{https_target.port} HTTP/1\.1" 200$')


def test_connect_to_another_port_is_refused_and_never_connects(connect_443, other_port):
    port = other_port.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    assert_challenged(curl("-p", "-x", connect_443.url, url), "Corporate Proxy")
    r = curl("-p", "-x", connect_443.url, "--proxy-user", "alice:secret", url)
    assert r.status == 403
    assert connect_443.wait_for_access_log(rf'^127\.0\.0\.1 alice "CONNECT 127\.0\.0\.1:{port} HTTP/1\.1" 403$')
    # The answer came after the port check, so any connection would be queued by now.
    assert not connection_attempted(other_port)


# ------------------------------------------------------------ X-Forwarded-User to a backend

SPOOF = ["-H", "X-Forwarded-User: admin"]


@pytest.fixture
def forwarded_user(make_httpd, backend, users):
    # Test-only: a location that refuses bob, and one without authentication.
    return run_recipe(make_httpd, "x-forwarded-user", {
        "http://app.internal:8080": backend.url,
        USERS: users,
    }, extra=f"""
<Location /app/alice-only>
    Require user alice
</Location>
<Location /public>
    ProxyPass {backend.url}/public
</Location>
""")


def test_backend_gets_the_authenticated_user_in_x_forwarded_user(forwarded_user):
    r = get(forwarded_user, "/app/x", ALICE)
    assert r.status == 200
    assert r.backend_headers()["x-forwarded-user"] == ["alice"]


def test_client_supplied_x_forwarded_user_is_replaced_by_the_authenticated_user(forwarded_user):
    for spoof in (SPOOF, ["-H", "x-forwarded-user: admin"], SPOOF + ["-H", "X-Forwarded-User: root"]):
        r = get(forwarded_user, "/app/x", ALICE, *spoof)
        assert r.status == 200
        assert r.backend_headers()["x-forwarded-user"] == ["alice"]


def test_spoofed_x_forwarded_user_without_valid_credentials_never_reaches_the_backend(forwarded_user, backend):
    for creds in (None, basic("admin", "x"), basic("alice", "wrong")):
        assert_challenged(get(forwarded_user, "/app/x", creds, *SPOOF), "Gateway")
    # bob authenticates but authorization refuses him: still nothing forwarded.
    assert_challenged(get(forwarded_user, "/app/alice-only/x", BOB, *SPOOF), "Gateway")
    assert backend.received == []


def test_spoofed_x_forwarded_user_is_removed_where_nobody_authenticates(forwarded_user):
    r = get(forwarded_user, "/public/x", None, *SPOOF)
    assert r.status == 200
    assert "x-forwarded-user" not in r.backend_headers()


# ------------------------------------------------------------ X-Forwarded-User to a parent proxy

@pytest.fixture
def parent():
    recorder = UpstreamProxyRecorder()
    yield recorder
    recorder.stop()


@pytest.fixture
def chained(make_httpd, parent, users, backend):
    # Test-only: tunnels to the echo backend, to see what a CONNECT carries.
    return run_recipe(make_httpd, "x-forwarded-user-parent-proxy", {
        '"http://parent-proxy.example.com:3128"': f'"http://127.0.0.1:{parent.port}"',
        USERS: users,
    }, extra=f"AllowCONNECT {backend.port}\n", extra_modules=("proxy_connect",))


def test_parent_proxy_gets_the_authenticated_user_and_no_credentials(chained, parent):
    # The destination is never resolved here: the parent proxy answers for it.
    r = curl("-x", chained.url, "--proxy-user", "alice:secret", *SPOOF, "http://www.example.com/page")
    assert r.status == 200
    [seen] = parent.wait_for(1)
    assert (seen.method, seen.path) == ("GET", "http://www.example.com/page")
    assert seen.header("X-Forwarded-User") == ["alice"]
    assert parent.proxy_authorization() == []


def test_nothing_reaches_the_parent_proxy_without_valid_credentials(chained, parent):
    for creds in ([], ["--proxy-user", "alice:wrong"]):
        r = curl("-x", chained.url, *creds, *SPOOF, "http://www.example.com/page")
        assert_challenged(r, "Corporate Proxy")
    assert parent.exchanges == []


def test_a_tunnel_through_the_parent_proxy_carries_no_user_name(chained, parent, backend):
    r = curl("-p", "-x", chained.url, "--proxy-user", "alice:secret", f"{backend.url}/inside")
    assert r.status == 200
    [connect] = parent.wait_for(1)
    assert (connect.method, connect.path) == ("CONNECT", f"127.0.0.1:{backend.port}")
    assert connect.header("X-Forwarded-User") == []
    assert "x-forwarded-user" not in r.backend_headers()
