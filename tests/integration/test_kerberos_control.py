"""The control for Negotiate: Debian's mod_auth_gssapi as a forward proxy in
the real httpd, against a real MIT KDC (kerberos.Kdc), with real clients.

What it proves is what ProxyNegotiate has to match or beat: curl with a
ticket gets through (plain requests and CONNECT), a client without a
ticket or with an expired one gets 407 with `Proxy-Authenticate:
Negotiate`, a python3-gssapi token made by hand is accepted once and
refused when replayed, a token for another service or a garbled one is
refused, and Chromium logs in from a ccache with no prompt.

And what the clients send (docs/kerberos-notes.md): the service name each
asks for, seen in the KDC's log, and what curl and Chromium send on a
kept-alive connection to a per-request and to a connection-bound proxy,
seen in httpd's access log, which records each request's connection and
Proxy-Authorization.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import RawHttp, client_env
from kerberos import USERS, Kdc, negotiate_header

SERVICES = ["HTTP/localhost", "HTTP/127.0.0.1"]
BROWSER_DIR = Path(__file__).parent / "browser"
# One line per request: client port (the connection), requests before it on
# that connection, user, request line, status, Proxy-Authorization.
NEGOTIATE_LOG_FORMAT = r'"%{remote}p %k %u \"%r\" %>s \"%{Proxy-Authorization}i\""'


@pytest.fixture
def principals(kdc):
    """alice and bob, and the proxy's services, in the realm."""
    for user, password in USERS.items():
        kdc.add_user(user, password)
    for service in SERVICES:
        kdc.add_service(service)


@pytest.fixture
def keytab(kdc, principals, server_root):
    """The proxy's services' keytab (readable by the User: the control
    reads it in httpd's children)."""
    path = kdc.keytab(os.path.join(server_root, "http.keytab"), *SERVICES)
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def alice(kdc, principals, server_root):
    """alice's ccache, with the TGT kinit got her."""
    return kdc.kinit("alice", USERS["alice"], os.path.join(server_root, "alice.ccache"))


def gssapi_scope(keytab, extra: str = "") -> str:
    return (f'    AuthType GSSAPI\n    AuthName "Kerberos Proxy"\n    GssapiCredStore keytab:{keytab}\n'
            f"{extra}    Require valid-user\n")


def gssapi_forward_proxy(make_httpd, backend, keytab, extra: str = ""):
    """mod_auth_gssapi guarding a forward proxy (and CONNECT) to the test backend only."""
    scope = gssapi_scope(keytab, extra)
    return make_httpd(f"""
ProxyRequests On
AllowCONNECT {backend.port}
LogFormat {NEGOTIATE_LOG_FORMAT} negotiate
CustomLog logs/negotiate_log negotiate
<Proxy "*">
    Require all denied
</Proxy>
<Proxy "http://127.0.0.1:{backend.port}/*">
{scope}</Proxy>
<Proxy "127.0.0.1:{backend.port}">
{scope}</Proxy>
""", auth_proxy_module=None, extra_modules=["auth_gssapi", "proxy_connect"],
        settings={"LogLevel": "warn auth_gssapi:debug"})


@pytest.fixture
def control(make_httpd, backend, keytab):
    return gssapi_forward_proxy(make_httpd, backend, keytab)


def negotiate_curl(kdc, ccache, *args: str) -> subprocess.CompletedProcess:
    """curl -v --proxy-negotiate -U : with KRB5CCNAME=@p ccache, as a user with a ticket runs it."""
    return subprocess.run(["curl", "-s", "-S", "-v", "--max-time", "20", "--proxy-negotiate", "-U", ":", *args],
                          capture_output=True, text=True, timeout=30, env=kdc.env(ccache, base=client_env()))


def statuses(verbose: str) -> list:
    return [int(m) for m in re.findall(r"^< HTTP/[\d.]+ (\d{3})", verbose, re.M)]


def logged_requests(h, expected: int | None) -> list[dict]:
    """The negotiate_log's lines, once it has @p expected of them (httpd
    writes after the response); None: those there are now."""
    pattern = re.compile(r'^(\d+) (\d+) (\S+) "(.*?)" (\d{3}) "(.*)"$')
    path = h.root / "logs" / "negotiate_log"
    deadline = time.time() + 5
    while expected is not None and len(path.read_text().splitlines()) < expected and time.time() < deadline:
        time.sleep(0.05)
    lines = path.read_text().splitlines()
    assert expected is None or len(lines) == expected, lines
    rows = []
    for line in lines:
        port, kept, user, request, status, auth = pattern.match(line).groups()
        rows.append({"conn": port, "kept": int(kept), "user": user, "request": request, "status": int(status),
                     "token": auth[len("Negotiate "):] if auth.startswith("Negotiate ") else None})
    return rows


def digest(token: str) -> str:
    return hashlib.sha256(base64.b64decode(token)).hexdigest()


def raw_get(conn: RawHttp, url: str, authorization: str | None = None):
    extra = f"Proxy-Authorization: {authorization}\r\n" if authorization else ""
    conn.send(f"GET {url} HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n{extra}\r\n".encode())
    return conn.read_response()


# ------------------------------------------------------------ the KDC itself

def test_the_realm_issues_tickets_and_keytabs(keytab, kdc, alice):
    assert kdc.has_valid_ticket(alice)
    assert kdc.as_requests("alice@PROXY.TEST") == 1
    held = set(kdc.keytab_principals(keytab))
    assert held == {f"{s}@PROXY.TEST" for s in SERVICES}


def test_a_wrong_password_gets_no_ticket(kdc, principals, server_root):
    with pytest.raises(RuntimeError, match="Password incorrect|preauthentication failed"):
        kdc.kinit("bob", "wrong", os.path.join(server_root, "bob.ccache"))


def test_a_short_ticket_expires_for_real(kdc, principals, server_root):
    ccache = kdc.expired_ccache("bob", USERS["bob"], os.path.join(server_root, "bob.ccache"))
    assert not kdc.has_valid_ticket(ccache)
    assert kdc.as_requests("bob@PROXY.TEST") == 1


def test_a_principals_maximum_life_caps_its_tickets(kdc, server_root):
    kdc.add_user("carol", "carol-secret", maxlife="3 seconds")
    ccache = kdc.kinit("carol", "carol-secret", os.path.join(server_root, "carol.ccache"))   # asks for 10 h
    deadline = time.time() + 20
    while kdc.has_valid_ticket(ccache):
        assert time.time() < deadline, "carol's ticket outlived her maximum life"
        time.sleep(0.2)


def test_a_stopped_kdc_starts_again_with_the_same_principals(kdc, principals, server_root):
    kdc.stop()
    assert not kdc.running()
    with pytest.raises(RuntimeError, match="Cannot contact any KDC"):
        kdc.kinit("bob", USERS["bob"], os.path.join(server_root, "bob.ccache"))
    kdc.start()
    assert kdc.has_valid_ticket(kdc.kinit("bob", USERS["bob"], os.path.join(server_root, "bob.ccache")))


# ------------------------------------------------------------ curl

def test_curl_with_a_ticket_gets_through_without_a_407_first(control, kdc, alice, backend):
    proc = negotiate_curl(kdc, alice, "-x", control.url, f"{backend.url}/page")
    assert proc.returncode == 0, proc.stderr
    # curl told to use Negotiate alone sends a token with the first request.
    assert statuses(proc.stderr) == [200]
    assert "> Proxy-Authorization: Negotiate " in proc.stderr
    assert [d["path"] for d in backend.received] == ["/page"]
    assert "proxy-authorization" not in {k.lower() for k, _v in backend.received[0]["headers"]}
    assert control.wait_for_access_log(rf'^127\.0\.0\.1 alice@PROXY\.TEST "GET {backend.url}/page HTTP/1\.1" 200$')


def test_curl_without_a_ticket_gets_407_with_a_negotiate_challenge(control, kdc, backend, server_root):
    proc = negotiate_curl(kdc, os.path.join(server_root, "empty.ccache"), "-x", control.url, f"{backend.url}/page")
    assert statuses(proc.stderr) == [407]
    assert re.search(r"^< Proxy-Authenticate: Negotiate\r?$", proc.stderr, re.M)
    assert "> Proxy-Authorization:" not in proc.stderr
    assert backend.received == []


def test_curl_with_an_expired_ticket_gets_407_and_asks_the_kdc_nothing(control, kdc, backend, server_root):
    ccache = kdc.expired_ccache("bob", USERS["bob"], os.path.join(server_root, "bob.ccache"))
    before = kdc.tgs_requests()
    proc = negotiate_curl(kdc, ccache, "-x", control.url, f"{backend.url}/page")
    assert statuses(proc.stderr) == [407]
    assert "> Proxy-Authorization:" not in proc.stderr
    assert kdc.tgs_requests() == before
    assert "for HTTP/" not in kdc.log_text()   # not even a refused TGS_REQ: the client library gave up
    assert backend.received == []


def test_curl_connect_tunnel_authenticates_the_connect_only(control, kdc, alice, backend):
    proc = negotiate_curl(kdc, alice, "-p", "-x", control.url, f"{backend.url}/t1", f"{backend.url}/t2")
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [200, 200, 200]   # CONNECT, then two GETs inside the tunnel
    assert proc.stderr.count("> Proxy-Authorization: Negotiate ") == 1
    assert [d["path"] for d in backend.received] == ["/t1", "/t2"]
    assert control.wait_for_access_log(rf'^127\.0\.0\.1 alice@PROXY\.TEST "CONNECT 127\.0\.0\.1:{backend.port} '
                                       r'HTTP/1\.1" 200$')


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_curl_asks_for_http_at_the_proxy_host_as_given(control, kdc, alice, backend, host):
    proc = negotiate_curl(kdc, alice, "-x", f"http://{host}:{control.port}", f"{backend.url}/page")
    assert statuses(proc.stderr) == [200], proc.stderr
    assert kdc.tgs_requests() == [("alice@PROXY.TEST", f"HTTP/{host}@PROXY.TEST")]


def test_with_mits_defaults_clients_ask_for_the_reverse_name_of_an_address(server_root, backend, monkeypatch):
    # No krb5.conf settings: rdns and dns_canonicalize_hostname are on, so
    # MIT's library looks 127.0.0.1 up (getnameinfo) and asks for that name.
    expected = f"HTTP/{socket.gethostbyaddr('127.0.0.1')[0]}@PROXY.TEST"
    kdc = Kdc(os.path.join(server_root, "kdc-canonical"), canonicalize=True).start()
    try:
        kdc.add_user("alice", USERS["alice"])
        kdc.add_service(expected.split("@")[0])
        # A ccache each, so that the second client cannot reuse the first one's service ticket.
        for_curl, for_python = (kdc.kinit("alice", USERS["alice"], os.path.join(server_root, f"alice-{client}.ccache"))
                                for client in ("curl", "python"))
        # Any listener will do as the "proxy": curl makes its token before it has an answer.
        negotiate_curl(kdc, for_curl, "-x", f"http://127.0.0.1:{backend.port}", f"{backend.url}/page")
        for name, value in kdc.env(for_python).items():
            if name.startswith("KRB5"):
                monkeypatch.setenv(name, value)
        negotiate_header("127.0.0.1", for_python)
        assert kdc.tgs_requests() == [("alice@PROXY.TEST", expected)] * 2
    finally:
        kdc.stop()


def test_curl_sends_a_new_token_with_every_request_of_a_kept_connection(control, kdc, alice, backend):
    urls = [f"{backend.url}/k{i}" for i in range(5)]
    proc = negotiate_curl(kdc, alice, "-x", control.url, *urls)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Re-using existing connection") == 4
    rows = logged_requests(control, 5)
    assert len({r["conn"] for r in rows}) == 1
    assert [r["kept"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in rows] == [200] * 5          # not one 407 round trip
    assert all(r["token"] for r in rows)
    assert len({digest(r["token"]) for r in rows}) == 5      # each token is new ...
    assert len(kdc.tgs_requests()) == 1                     # ... from one service ticket


def test_curl_anyauth_is_challenged_again_on_every_request_of_a_kept_connection(control, kdc, alice, backend):
    # --proxy-anyauth: curl waits for the 407, then answers it; on the next
    # request it starts again without credentials.
    urls = [f"{backend.url}/k{i}" for i in range(4)]
    proc = negotiate_curl(kdc, alice, "--proxy-anyauth", "-x", control.url, *urls)
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [407, 200] * 4
    rows = logged_requests(control, 8)
    assert len({r["conn"] for r in rows}) == 1
    assert [(r["status"], bool(r["token"])) for r in rows] == [(407, False), (200, True)] * 4
    assert len({digest(r["token"]) for r in rows if r["token"]}) == 4


def test_curl_anyauth_sends_nothing_more_to_a_connection_bound_proxy(make_httpd, keytab, kdc, alice, backend):
    h = gssapi_forward_proxy(make_httpd, backend, keytab, "    GssapiConnectionBound On\n")
    urls = [f"{backend.url}/k{i}" for i in range(4)]
    proc = negotiate_curl(kdc, alice, "--proxy-anyauth", "-x", h.url, *urls)
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [407, 200, 200, 200, 200]
    rows = logged_requests(h, 5)
    assert len({r["conn"] for r in rows}) == 1
    assert [(r["status"], r["user"], bool(r["token"])) for r in rows] == [
        (407, "-", False), (200, "alice@PROXY.TEST", True), *[(200, "alice@PROXY.TEST", False)] * 3]


def test_curl_negotiate_sends_tokens_to_a_connection_bound_proxy_too(make_httpd, keytab, kdc, alice, backend):
    h = gssapi_forward_proxy(make_httpd, backend, keytab, "    GssapiConnectionBound On\n")
    proc = negotiate_curl(kdc, alice, "-x", h.url, *[f"{backend.url}/k{i}" for i in range(3)])
    assert statuses(proc.stderr) == [200, 200, 200]
    rows = logged_requests(h, 3)
    assert len({digest(r["token"]) for r in rows}) == 3


def test_with_the_kdc_stopped_only_a_cached_service_ticket_gets_through(control, kdc, alice, backend, server_root):
    # The acceptor needs only its keytab; a client needs the KDC once per service.
    assert statuses(negotiate_curl(kdc, alice, "-x", control.url, f"{backend.url}/warm").stderr) == [200]
    # Stored under the name asked for: host-based, so the realm is left empty.
    assert "HTTP/127.0.0.1@" in kdc.service_tickets(alice)
    bob = kdc.kinit("bob", USERS["bob"], os.path.join(server_root, "bob.ccache"))   # a TGT only
    kdc.stop()
    assert statuses(negotiate_curl(kdc, alice, "-x", control.url, f"{backend.url}/alice").stderr) == [200]
    refused = negotiate_curl(kdc, bob, "-x", control.url, f"{backend.url}/bob")
    assert statuses(refused.stderr) == [407]
    assert "> Proxy-Authorization:" not in refused.stderr
    kdc.start()
    assert statuses(negotiate_curl(kdc, bob, "-x", control.url, f"{backend.url}/bob").stderr) == [200]
    assert backend.paths() == ["/warm", "/alice", "/bob"]


# ------------------------------------------------------------ python3-gssapi, by hand

@pytest.fixture
def gss_env(kdc, alice, monkeypatch):
    """This process as alice's client: the realm's krb5.conf and her ccache."""
    for name, value in kdc.env(alice).items():
        if name.startswith("KRB5"):
            monkeypatch.setenv(name, value)


def test_python_gssapi_token_gets_through_once_and_its_replay_is_refused(control, gss_env, kdc, alice, backend):
    header = negotiate_header("127.0.0.1", alice)
    with RawHttp(control.port) as conn:
        assert raw_get(conn, f"{backend.url}/first", header).status == 200
    with RawHttp(control.port) as conn:
        replayed = raw_get(conn, f"{backend.url}/replayed", header)
    assert replayed.status == 407
    # The challenge carries the acceptor's error token (a KRB-ERROR in a SPNEGO reject).
    assert replayed.header("Proxy-Authenticate").startswith("Negotiate ")
    assert control.wait_for_log(r"gss_accept_sec_context\(\) failed: .*\(Request is a replay\)")
    assert backend.paths() == ["/first"]
    assert kdc.tgs_requests() == [("alice@PROXY.TEST", "HTTP/127.0.0.1@PROXY.TEST")]


def test_python_gssapi_token_for_another_service_is_refused(control, gss_env, kdc, alice, backend):
    kdc.add_service("HTTP/elsewhere.test")
    with RawHttp(control.port) as conn:
        r = raw_get(conn, f"{backend.url}/page", negotiate_header("elsewhere.test", alice))
    assert r.status == 407
    assert backend.received == []


def test_garbled_token_is_refused(control, gss_env, backend):
    with RawHttp(control.port) as conn:
        r = raw_get(conn, f"{backend.url}/page", "Negotiate " + base64.b64encode(b"not a token").decode())
    assert r.status == 407
    assert backend.received == []


def test_per_request_control_challenges_a_kept_connection_again(control, gss_env, alice, backend):
    # Without GssapiConnectionBound, each request needs its own token.
    with RawHttp(control.port) as conn:
        assert raw_get(conn, f"{backend.url}/a", negotiate_header("127.0.0.1", alice)).status == 200
        again = raw_get(conn, f"{backend.url}/b")
        assert again.status == 407
        assert raw_get(conn, f"{backend.url}/c", negotiate_header("127.0.0.1", alice)).status == 200
    assert backend.paths() == ["/a", "/c"]


def test_connection_bound_control_lets_a_kept_connection_through(make_httpd, keytab, gss_env, alice, backend):
    h = gssapi_forward_proxy(make_httpd, backend, keytab, "    GssapiConnectionBound On\n")
    with RawHttp(h.port) as conn:
        assert raw_get(conn, f"{backend.url}/a", negotiate_header("127.0.0.1", alice)).status == 200
        assert raw_get(conn, f"{backend.url}/b").status == 200
    with RawHttp(h.port) as conn:
        assert raw_get(conn, f"{backend.url}/c").status == 407
    assert backend.paths() == ["/a", "/b"]
    rows = logged_requests(h, 3)
    assert [(r["user"], r["status"], bool(r["token"])) for r in rows] == [
        ("alice@PROXY.TEST", 200, True), ("alice@PROXY.TEST", 200, False), ("-", 407, False)]


# ------------------------------------------------------------ headless chromium

def chromium_pages(kdc, ccache, proxy, urls: list[str]) -> list[dict]:
    """Loads @p urls in turn in one headless chromium (browser/load_page.js)
    through @p proxy with KRB5CCNAME=@p ccache and no user name: whatever
    authentication happens is the browser's own."""
    if not shutil.which("node") or not Path("/usr/bin/chromium").exists():
        pytest.fail("chromium and node are installed by scripts/test; run it once")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        pytest.fail(f"playwright-core is missing: npm ci --prefix {BROWSER_DIR} (scripts/test does it)")
    proc = subprocess.run(["node", str(BROWSER_DIR / "load_page.js"), json.dumps({"proxy": proxy.url, "urls": urls})],
                          capture_output=True, text=True, timeout=180, env=kdc.env(ccache, base=client_env()))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["pages"]


def backend_rows(h, backend, last_path: str) -> list[dict]:
    """The negotiate_log rows of every GET for the backend (the browser's
    favicon requests included, its background requests to other hosts left
    out), once @p last_path has been answered with 200."""
    prefix, last = f"GET {backend.url}/", f"GET {backend.url}{last_path} HTTP/1.1"
    deadline = time.time() + 10
    while True:
        rows = [r for r in logged_requests(h, None) if r["request"].startswith(prefix)]
        if any(r["request"] == last and r["status"] == 200 for r in rows) or time.time() > deadline:
            return rows


def per_connection(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r["conn"], []).append(r)
    return out


# Chromium 156 leaves the first challenge after its start unanswered (its net
# log: AUTH_HANDLER_CREATE_RESULT net_error -339, ERR_UNSUPPORTED_AUTH_SCHEME,
# before it has loaded libgssapi_krb5.so.2), so each run begins with a page
# whose result is not asserted; every later challenge is answered.
WARM_UP = "/warm-up"


def test_chromium_answers_each_challenge_from_its_ticket_with_no_prompt(control, kdc, alice, backend):
    paths = [f"/page{i}" for i in range(3)]
    pages = chromium_pages(kdc, alice, control, [f"{backend.url}{p}" for p in [WARM_UP, *paths]])
    assert [(p["status"], p["error"]) for p in pages[1:]] == [(200, None)] * 3
    assert [json.loads(p["text"])["path"] for p in pages[1:]] == paths
    rows = backend_rows(control, backend, paths[-1])
    # A per-request proxy: chromium sends nothing until challenged, then a new
    # token on the same connection, for every page.
    for path in paths:
        mine = [r for r in rows if r["request"] == f"GET {backend.url}{path} HTTP/1.1"]
        assert [(r["status"], bool(r["token"])) for r in mine] == [(407, False), (200, True)]
        assert mine[0]["conn"] == mine[1]["conn"]
    tokens = [digest(r["token"]) for r in rows if r["token"]]
    assert len(set(tokens)) == len(tokens)
    assert ("alice@PROXY.TEST", "HTTP/127.0.0.1@PROXY.TEST") in kdc.tgs_requests()


def test_chromium_sends_nothing_more_on_a_connection_bound_proxy(make_httpd, keytab, kdc, alice, backend):
    h = gssapi_forward_proxy(make_httpd, backend, keytab, "    GssapiConnectionBound On\n")
    paths = [f"/page{i}" for i in range(4)]
    pages = chromium_pages(kdc, alice, h, [f"{backend.url}{p}" for p in [WARM_UP, *paths]])
    assert [(p["status"], p["error"]) for p in pages[1:]] == [(200, None)] * 4
    rows = backend_rows(h, backend, paths[-1])
    # On each connection: challenged until one token is accepted, then
    # nothing more is sent and everything is let through.
    warm = 0
    for conn, mine in per_connection(rows).items():
        shape = [(r["status"], bool(r["token"])) for r in mine]
        if (200, True) not in shape:
            assert all(r["status"] == 407 for r in mine), (conn, shape)
            continue
        first = shape.index((200, True))
        assert all(st == (407, False) for st in shape[:first]), (conn, shape)
        assert all(st == (200, False) for st in shape[first + 1:]), (conn, shape)
        assert all(r["user"] == "alice@PROXY.TEST" for r in mine[first:])
        warm += len(shape) - first - 1
    assert warm >= 3   # at least the pages after the first on a connection
