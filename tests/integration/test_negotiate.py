"""AuthType ProxyNegotiate against a real MIT KDC (kerberos.Kdc), in the real
httpd, with real clients: curl --proxy-negotiate through a forward proxy and
CONNECT, python3-gssapi tokens for reverse proxies and HTTP/2, and tokens
replayed, for another service, garbled, from an expired ticket.

The keytab is readable by root alone: the parent reads it at start into a
MEMORY: keytab, and the children, running as the User, never open it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time

import pytest

from harness import RawHttp, client_env, curl, self_signed_cert
from kerberos import USERS, negotiate_header

SERVICES = ["HTTP/localhost", "HTTP/127.0.0.1"]
REALM = "Kerberos Proxy"


@pytest.fixture
def principals(kdc):
    for user, password in USERS.items():
        kdc.add_user(user, password)
    for service in SERVICES + ["HTTP/elsewhere.test"]:
        kdc.add_service(service)


@pytest.fixture
def keytab(kdc, principals, server_root):
    """The proxy's keytab, root's alone (0600): only the parent, as root, reads it."""
    path = kdc.keytab(os.path.join(server_root, "http.keytab"), *SERVICES)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def alice(kdc, principals, server_root):
    return kdc.kinit("alice", USERS["alice"], os.path.join(server_root, "alice.ccache"))


@pytest.fixture
def bob(kdc, principals, server_root):
    return kdc.kinit("bob", USERS["bob"], os.path.join(server_root, "bob.ccache"))


def scope(keytab, extra: str = "", require: str = "valid-user") -> str:
    return (f"    AuthType ProxyNegotiate\n    AuthProxyKeytab {keytab}\n{extra}"
            f"    Require {require}\n")


def forward_proxy(make_httpd, backend, body: str, modules: tuple = (), preamble: str = "", **options):
    h = make_httpd(f"""{preamble}
ProxyRequests On
AllowCONNECT {backend.port}
<Proxy "*">
{body}</Proxy>
""", extra_modules=["proxy_connect", *modules], **options)
    h.proxy_url = f"http://127.0.0.1:{h.port}"
    return h


def reverse_proxy(make_httpd, backend, body: str, preamble: str = "", **options):
    return make_httpd(f"""{preamble}
<Location "/app">
    ProxyPass "{backend.url}"
{body}</Location>
""", **options)


def negotiate_curl(kdc, ccache, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "-S", "-v", "--max-time", "20", "--proxy-negotiate", "-U", ":", *args],
                          capture_output=True, text=True, timeout=30, env=kdc.env(ccache, base=client_env()))


def statuses(verbose: str) -> list:
    return [int(m) for m in re.findall(r"^< HTTP/[\d.]+ (\d{3})", verbose, re.M)]


def token_for(kdc, ccache, host: str = "127.0.0.1", service: str = "HTTP") -> str:
    os.environ["KRB5_CONFIG"] = str(kdc.krb5_conf)
    return negotiate_header(host, ccache, service)


def get(port: int, path: str, authorization: str | None = None, conn: RawHttp | None = None, host: str = "x"):
    extra = f"Proxy-Authorization: {authorization}\r\n" if authorization else ""
    c = conn or RawHttp(port)
    c.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    r = c.read_response()
    if conn is None:
        c.close()
    return r


def wait_for_log(h, pattern: str, timeout: float = 5.0) -> str:
    deadline = time.time() + timeout
    while True:
        m = re.search(pattern, h.log(), re.M)
        if m:
            return m.group(0)
        if time.time() >= deadline:
            return ""
        time.sleep(0.05)


# ------------------------------------------------------------ forward proxy and CONNECT, with curl

@pytest.fixture
def forward(make_httpd, backend, keytab):
    return forward_proxy(make_httpd, backend, scope(keytab))


def test_without_a_token_the_challenge_is_negotiate_with_407(forward, backend):
    r = curl("-x", forward.proxy_url, f"{backend.url}/page")
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate"]
    assert backend.received == []


def test_curl_with_a_ticket_gets_through_the_forward_proxy_as_the_local_name(forward, kdc, alice, backend):
    proc = negotiate_curl(kdc, alice, "-x", forward.proxy_url, f"{backend.url}/page")
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [200]
    [seen] = backend.received
    assert seen["path"] == "/page"
    assert "proxy-authorization" not in {k.lower() for k, _v in seen["headers"]}
    assert forward.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {backend.url}/page HTTP/1\.1" 200$')


def test_curl_with_a_ticket_opens_a_connect_tunnel(forward, kdc, alice, backend):
    proc = negotiate_curl(kdc, alice, "-p", "-x", forward.proxy_url, f"{backend.url}/tunnelled")
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr)[0] == 200
    assert [d["path"] for d in backend.received] == ["/tunnelled"]
    assert forward.wait_for_access_log(rf'^127\.0\.0\.1 alice "CONNECT 127\.0\.0\.1:{backend.port} HTTP/1\.1" 200$')


def test_curl_without_a_ticket_gets_407(forward, kdc, backend, server_root):
    proc = negotiate_curl(kdc, os.path.join(server_root, "empty.ccache"), "-x", forward.proxy_url,
                          f"{backend.url}/page")
    assert statuses(proc.stderr) == [407]
    assert backend.received == []


def test_the_keytab_is_read_as_root_at_start_and_never_by_the_user(forward, keytab):
    assert os.stat(keytab).st_mode & 0o077 == 0
    assert wait_for_log(forward, r"APX03032: AuthProxyKeytab .*HTTP/localhost@PROXY\.TEST")
    children = subprocess.run(["pgrep", "-u", "www-data", "-f", str(forward.root)], capture_output=True,
                              text=True).stdout.split()
    assert children
    for pid in children:
        fds = os.listdir(f"/proc/{pid}/fd")
        assert all(os.path.realpath(f"/proc/{pid}/fd/{fd}") != keytab for fd in fds)


# ------------------------------------------------------------ tokens by hand: replays, services, garbage

def test_a_token_is_accepted_once_and_its_replay_is_refused_on_another_connection(forward, kdc, alice, backend):
    token = token_for(kdc, alice)
    first = get(forward.port, f"{backend.url}/one", token)
    assert first.status == 200
    second = get(forward.port, f"{backend.url}/two", token)
    assert second.status == 407
    assert second.headers["proxy-authenticate"] == ["Negotiate"]
    assert [d["path"] for d in backend.received] == ["/one"]
    assert wait_for_log(forward, r'user alice@PROXY\.TEST: authentication failure for ".*": a token seen '
                                 r'before, replayed \(APX01061\)|user -: .*replayed \(APX01061\)')


def test_a_replay_is_refused_by_every_server_process(make_httpd, backend, keytab, kdc, alice):
    # prefork: each connection below may land on another process; the replay
    # cache is the one file they all share.
    h = forward_proxy(make_httpd, backend, scope(keytab), mpm="prefork")
    token = token_for(kdc, alice)
    assert get(h.port, f"{backend.url}/once", token).status == 200
    answers = [get(h.port, f"{backend.url}/again{i}", token).status for i in range(6)]
    assert answers == [407] * 6
    assert [d["path"] for d in backend.received] == ["/once"]


def test_a_token_for_another_service_is_refused(forward, kdc, alice, backend):
    token = token_for(kdc, alice, host="elsewhere.test")
    r = get(forward.port, f"{backend.url}/page", token)
    assert r.status == 407
    assert backend.received == []
    assert wait_for_log(forward, r"\(APX01063\)")


@pytest.mark.parametrize("value", ["Negotiate", "Negotiate !!!", "Negotiate " + base64.b64encode(b"garbage").decode(),
                                   "Negotiate " + base64.b64encode(b"\x60\x03\x06\x01\x00").decode()])
def test_a_garbled_token_is_refused_with_a_fresh_challenge(forward, backend, value):
    r = get(forward.port, f"{backend.url}/page", value)
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate"]
    assert backend.received == []
    assert wait_for_log(forward, r"APX01003: malformed Proxy-Authorization header")


def test_a_token_from_an_expired_ticket_is_refused(forward, kdc, principals, backend, server_root):
    """No stock client sends a token from an expired ticket (MIT's library
    refuses locally), so negotiate_tool makes one from the cached service
    ticket; the test realm's clock skew is 2 s."""
    tool = os.environ["AUTH_PROXY_NEGOTIATE_TOOL"]
    ccache = kdc.kinit("bob", USERS["bob"], os.path.join(server_root, "bob4s.ccache"), lifetime="4s")
    subprocess.run(["kvno", "HTTP/127.0.0.1"], env=kdc.env(ccache), check=True, capture_output=True, timeout=60)

    def token() -> dict:
        out = subprocess.run([tool, "token", "--ccache", str(ccache), "--service", "HTTP/127.0.0.1"],
                             env=kdc.env(ccache), capture_output=True, text=True, timeout=60, check=True)
        return json.loads(out.stdout)

    fresh = token()
    assert get(forward.port, f"{backend.url}/fresh", "Negotiate " + fresh["token"]).status == 200   # the control
    deadline = time.time() + 60
    while int(time.time()) <= fresh["endtime"] + kdc.clockskew:
        assert time.time() < deadline, "the ticket did not expire"
        time.sleep(0.2)
    stale = token()
    assert stale["endtime"] == fresh["endtime"]
    r = get(forward.port, f"{backend.url}/stale", "Negotiate " + stale["token"])
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate"]
    assert [d["path"] for d in backend.received] == ["/fresh"]
    assert wait_for_log(forward, r"user -: authentication failure for .*ticket expired.*\(APX01062\)")


# ------------------------------------------------------------ the warm path: a connection stays authenticated

def test_a_connection_stays_authenticated_after_its_token_and_only_that_connection(forward, kdc, alice, backend):
    with RawHttp(forward.port) as conn:
        assert get(forward.port, f"{backend.url}/first", token_for(kdc, alice), conn=conn).status == 200
        for i in range(3):
            assert get(forward.port, f"{backend.url}/kept{i}", conn=conn).status == 200
    # Another connection without a token is challenged.
    assert get(forward.port, f"{backend.url}/other").status == 407
    assert [d["path"] for d in backend.received] == ["/first", "/kept0", "/kept1", "/kept2"]
    for path in ("/first", "/kept0", "/kept2"):
        assert forward.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {backend.url}{path} HTTP/1\.1" 200$')


def test_a_refused_token_ends_the_connections_binding(forward, kdc, alice, backend):
    with RawHttp(forward.port) as conn:
        assert get(forward.port, f"{backend.url}/first", token_for(kdc, alice), conn=conn).status == 200
        assert get(forward.port, f"{backend.url}/bad", "Negotiate !!!", conn=conn).status == 407
        assert get(forward.port, f"{backend.url}/after", conn=conn).status == 407
    assert [d["path"] for d in backend.received] == ["/first"]


def test_a_binding_holds_only_in_scopes_with_the_same_keys_and_local_name(make_httpd, backend, kdc, keytab,
                                                                          alice, server_root):
    # The same services' keys in another file are another acceptor: its scope asks for its own token.
    other = kdc.keytab(os.path.join(server_root, "other.keytab"), *SERVICES)
    os.chown(other, 0, 0)
    os.chmod(other, 0o600)
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
{scope(keytab)}</Proxy>
<ProxyMatch "/other-keys">
    AuthProxyKeytab {other}
</ProxyMatch>
<ProxyMatch "/other-names">
    AuthProxyLocalName Off
</ProxyMatch>
""")
    with RawHttp(h.port) as conn:
        assert get(h.port, f"{backend.url}/first", token_for(kdc, alice), conn=conn).status == 200
        assert get(h.port, f"{backend.url}/other-keys", conn=conn).status == 407
        assert get(h.port, f"{backend.url}/other-names", conn=conn).status == 407
        # A challenge for want of a token refuses nothing: the binding stays for its own scope.
        assert get(h.port, f"{backend.url}/kept", conn=conn).status == 200
    assert [d["path"] for d in backend.received] == ["/first", "/kept"]


def test_a_basic_login_on_a_bound_connection_ends_the_binding(make_httpd, backend, keytab, users, kdc, alice):
    # bob logs in with Basic on alice's bound connection: the connection now
    # speaks for bob's last login, and a request without credentials is
    # nobody's.
    h = reverse_proxy(make_httpd, backend, scope(keytab, f'    AuthName "{REALM}"\n    AuthUserFile {users}\n'))
    with RawHttp(h.port) as conn:
        assert get(h.port, "/app/a", token_for(kdc, alice), conn=conn).status == 200
        assert get(h.port, "/app/b", conn=conn).status == 200
        assert get(h.port, "/app/c", "Basic " + base64.b64encode(b"alice:secret").decode(), conn=conn).status == 200
        assert get(h.port, "/app/d", conn=conn).status == 407
    assert [d["path"] for d in backend.received] == ["/a", "/b", "/c"]


def test_the_same_refused_token_again_is_refused_without_asking_and_logged_for_fail2ban(forward, backend):
    token = "Negotiate " + base64.b64encode(b"\x60\x03\x06\x01\x00").decode()
    assert get(forward.port, f"{backend.url}/a", token).status == 407
    assert get(forward.port, f"{backend.url}/b", token).status == 407
    assert wait_for_log(forward, r'user -: authentication failure for ".*/b": the same refused token again '
                                 r'\(APX01066\)$')


def test_with_connection_binding_off_every_request_needs_its_token(make_httpd, backend, keytab, kdc, alice):
    h = forward_proxy(make_httpd, backend, scope(keytab, "    AuthProxyConnectionBound Off\n"))
    with RawHttp(h.port) as conn:
        assert get(h.port, f"{backend.url}/first", token_for(kdc, alice), conn=conn).status == 200
        assert get(h.port, f"{backend.url}/second", conn=conn).status == 407
        assert get(h.port, f"{backend.url}/third", token_for(kdc, alice), conn=conn).status == 200
    assert [d["path"] for d in backend.received] == ["/first", "/third"]


# ------------------------------------------------------------ names, Require, groups

def test_local_name_off_makes_the_user_the_whole_principal(make_httpd, backend, keytab, kdc, alice):
    h = forward_proxy(make_httpd, backend, scope(keytab, "    AuthProxyLocalName Off\n",
                                                 require="user alice@PROXY.TEST"))
    assert get(h.port, f"{backend.url}/p", token_for(kdc, alice)).status == 200
    assert h.wait_for_access_log(rf'^127\.0\.0\.1 alice@PROXY\.TEST "GET {backend.url}/p HTTP/1\.1" 200$')


@pytest.mark.parametrize("require,alice_in,bob_in", [
    ("user alice", True, False),
    ("group staff", False, True),
])
def test_require_user_and_group_see_the_local_name(make_httpd, backend, keytab, kdc, alice, bob, server_root,
                                                   require, alice_in, bob_in):
    groups = os.path.join(server_root, "groups")
    with open(groups, "w") as f:
        f.write("staff: bob carol\n")
    os.chmod(groups, 0o644)
    h = forward_proxy(make_httpd, backend, scope(keytab, f"    AuthGroupFile {groups}\n", require=require),
                      modules=("authz_groupfile",))
    assert get(h.port, f"{backend.url}/a", token_for(kdc, alice)).status == (200 if alice_in else 407)
    assert get(h.port, f"{backend.url}/b", token_for(kdc, bob)).status == (200 if bob_in else 407)


# ------------------------------------------------------------ reverse proxies and HTTP/2

def test_a_reverse_proxy_answers_407_and_takes_a_token(make_httpd, backend, keytab, kdc, alice):
    h = reverse_proxy(make_httpd, backend, scope(keytab))
    r = get(h.port, "/app/x")
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate"]
    r = get(h.port, "/app/x", token_for(kdc, alice))
    assert r.status == 200
    assert backend.received[-1]["path"] == "/x"
    # Authorization stays the backend's.
    assert "proxy-authorization" not in {k.lower() for k, _v in backend.received[-1]["headers"]}


@pytest.mark.parametrize("how", ["ProxyPassMatch", "RewriteRule [P]"])
def test_proxypassmatch_and_rewrite_proxying_take_a_token_too(make_httpd, backend, keytab, kdc, alice, how):
    if how == "ProxyPassMatch":
        body = f'ProxyPassMatch "^/m/(.*)$" "{backend.url}/$1"\n'
        modules = []
    else:
        body = f'RewriteEngine On\nRewriteRule "^/m/(.*)$" "{backend.url}/$1" [P]\n'
        modules = ["rewrite"]
    h = make_httpd(f"""{body}
<LocationMatch "^/m/">
{scope(keytab)}</LocationMatch>
""", extra_modules=modules)
    r = get(h.port, "/m/x")
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate"]
    assert get(h.port, "/m/y", token_for(kdc, alice)).status == 200
    assert [d["path"] for d in backend.received] == ["/y"]


def test_with_a_user_file_basic_is_offered_after_negotiate(make_httpd, backend, keytab, users, kdc, alice):
    h = reverse_proxy(make_httpd, backend, scope(keytab, f'    AuthName "{REALM}"\n    AuthUserFile {users}\n'))
    r = get(h.port, "/app/x")
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate", f'Basic realm="{REALM}", charset="UTF-8"']
    basic = "Basic " + base64.b64encode(b"alice:secret").decode()
    assert get(h.port, "/app/basic", basic).status == 200
    assert get(h.port, "/app/wrong", "Basic " + base64.b64encode(b"alice:nope").decode()).status == 407
    assert get(h.port, "/app/negotiate", token_for(kdc, alice)).status == 200
    assert [d["path"] for d in backend.received] == ["/basic", "/negotiate"]


def test_http2_streams_each_need_a_token_and_get_through_with_one(make_httpd, backend, keytab, kdc, alice,
                                                                   server_root):
    cert, key = self_signed_cert(f"{server_root}/tls")
    h = reverse_proxy(make_httpd, backend, scope(keytab), preamble=f"""
Protocols h2 http/1.1
SSLSessionCache shmcb:run/ssl_scache(512000)
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}""", extra_modules=["ssl", "socache_shmcb", "http2"])
    url = f"https://127.0.0.1:{h.port}/app/h2"
    r = curl("--http2", "-k", url)
    assert r.status == 407 and r.status_line.startswith("HTTP/2")
    r = curl("--http2", "-k", "-H", f"Proxy-Authorization: {token_for(kdc, alice)}", url)
    assert r.status == 200 and r.status_line.startswith("HTTP/2")
    assert h.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /app/h2 HTTP/2\.0" 200$')


# ------------------------------------------------------------ the KDC down; configuration errors

def test_a_stopped_kdc_stops_no_client_that_has_its_service_ticket(forward, kdc, alice, bob, backend):
    assert negotiate_curl(kdc, alice, "-x", forward.proxy_url, f"{backend.url}/before").returncode == 0
    kdc.stop()
    # The proxy never talks to the KDC: alice's cached service ticket still works.
    assert get(forward.port, f"{backend.url}/during", token_for(kdc, alice)).status == 200
    # bob has no service ticket and cannot get one: his client sends nothing.
    proc = negotiate_curl(kdc, bob, "-x", forward.proxy_url, f"{backend.url}/bob")
    assert statuses(proc.stderr) == [407]
    kdc.start()
    proc = negotiate_curl(kdc, bob, "-x", forward.proxy_url, f"{backend.url}/bob-later")
    assert statuses(proc.stderr) == [200]


def test_a_scope_without_a_keytab_fails_configtest(make_httpd, backend):
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
    AuthType ProxyNegotiate
    Require valid-user
</Proxy>
""", start=False)
    proc = h.configtest()
    assert proc.returncode != 0
    assert "APX03033" in proc.stderr


def test_configtest_reads_the_keytab_as_the_start_will(make_httpd, backend, server_root):
    missing = os.path.join(server_root, "no.keytab")
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
{scope(missing)}</Proxy>
""", start=False)
    proc = h.configtest()
    assert proc.returncode != 0
    assert re.search(r"APX03030: AuthProxyKeytab: .*no\.keytab.*not found", proc.stderr + proc.stdout + h.log())


def test_an_unreadable_keytab_stops_the_start_with_a_clear_line(make_httpd, backend, server_root):
    missing = os.path.join(server_root, "no.keytab")
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
{scope(missing)}</Proxy>
""", start=False)
    # httpd opens its listeners before the module reads the keytab, so the
    # port answers for a moment: what counts is that the process ends.
    h.write_config()
    proc = h.command("-DFOREGROUND")
    assert proc.returncode != 0
    assert re.search(r"APX03030: AuthProxyKeytab: .*no\.keytab.*not found", h.log() + proc.stdout + proc.stderr)


# ------------------------------------------------------------ Chromium, logging in from its ccache

def test_chromium_logs_in_with_no_prompt_and_sends_one_token_per_connection(make_httpd, backend, keytab, kdc,
                                                                            alice):
    from test_kerberos_control import WARM_UP, chromium_pages

    # The module takes Proxy-Authorization out of the request before the
    # access log is written, so whether a request carried a token is noted
    # when it arrives (mod_setenvif) and logged from there.
    h = forward_proxy(make_httpd, backend, scope(keytab), modules=("setenvif",), preamble="""
SetEnvIf Proxy-Authorization "^Negotiate " sent_token=yes
LogFormat "%{remote}p %u \\"%r\\" %>s %{sent_token}e" negotiate
CustomLog logs/negotiate_log negotiate""")
    paths = [f"/page{i}" for i in range(4)]
    pages = chromium_pages(kdc, alice, h, [f"{backend.url}{p}" for p in [WARM_UP, *paths]])
    assert [(p["status"], p["error"]) for p in pages[1:]] == [(200, None)] * 4
    assert [json.loads(p["text"])["path"] for p in pages[1:]] == paths

    log = h.root / "logs" / "negotiate_log"
    last = f'"GET {backend.url}{paths[-1]} HTTP/1.1" 200'
    deadline = time.time() + 10
    while last not in log.read_text() and time.time() < deadline:
        time.sleep(0.05)
    connections: dict = {}
    for line in log.read_text().splitlines():
        port, user, request, status, sent = re.match(r'^(\d+) (\S+) "(.*?)" (\d{3}) (\S+)$', line).groups()
        if request.startswith(f"GET {backend.url}/"):
            connections.setdefault(port, []).append((int(status), sent == "yes", user))
    # On each connection: challenged until its one token is accepted, then
    # nothing more is sent, and every request passes as alice.
    warm = 0
    for conn, mine in connections.items():
        shape = [(status, sent) for status, sent, _user in mine]
        if (200, True) not in shape:
            assert all(status == 407 for status, _sent in shape), (conn, shape)
            continue
        first = shape.index((200, True))
        assert all(st == (407, False) for st in shape[:first]), (conn, shape)
        assert all(st == (200, False) for st in shape[first + 1:]), (conn, shape)
        assert all(user == "alice" for _status, _sent, user in mine[first:])
        warm += len(shape) - first - 1
    assert warm >= 3
