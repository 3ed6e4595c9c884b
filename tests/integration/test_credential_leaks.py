"""Proxy credentials never leave the proxy, whatever the scheme it proxies to.

Every backend here is a real server on loopback, written for these tests
(recording_backends.py), that keeps the raw bytes it received and what it
parsed out of them: HTTP/1.1 (http, https, ws and wss through mod_proxy_http,
ws through mod_proxy_wstunnel's own handler), AJP13, HTTP/2 (h2c, h2 over TLS
with ALPN), FastCGI, SCGI, uWSGI, balancer members (http, ajp), the target of
a CONNECT tunnel, and an upstream proxy httpd chains to (ProxyRemote). For
each scheme:

1. valid proxy credentials let the request through, the backend's own
   Authorization still arrives (which proves the recorder sees request
   headers), and the backend gets no Proxy-Authorization header, no
   HTTP_PROXY_AUTHORIZATION variable, and neither the base64 token nor the
   password anywhere in its bytes (HTTP/2 recorders also search the decoded
   header block: HPACK Huffman-codes the value on the wire);
2. ``Proxy-Chain-Auth`` (httpd's documented switch for handing the
   credentials on to an upstream proxy) does forward them where the protocol
   carries request headers: http, https, ws, wss, ajp, h2c, h2, balancer
   members, an http:// or https:// request relayed to a ProxyRemote. Not
   asserted for fcgi/scgi/uwsgi (an application sits there, never a proxy;
   the variable only exists with CGIPassAuth On), nor for CONNECT:
   mod_proxy_connect writes only "CONNECT host:port" and "Proxy-agent" to a
   ProxyRemote, so credentials cannot be chained there at all;
3. access granted without a user (Require all granted, Require ip) inside a
   ProxyBasic scope forwards no credentials either;
4. a failed login whose ErrorDocument 407 is a local URL that is itself
   reverse-proxied (an ordinary scope, not ProxyBasic) does not hand the
   client's wrong credentials to that backend: httpd serves the error page
   by an internal redirect sharing the original request's headers, with no
   r->user. (The client then gets the error backend's status, 200 or for a
   WebSocket handshake 101, under the proxy's challenge: httpd behaviour.)

The CGI protocols run with ``CGIPassAuth On``, which an operator sets so that
PHP-FPM & co. see the backend's own Authorization: httpd's ap_add_common_vars()
then also turns Proxy-Authorization into HTTP_PROXY_AUTHORIZATION.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness import RawHttp, Response, basic, curl, proxy_basic_auth, self_signed_cert, token, ws_exchange
from recording_backends import (AjpRecorder, FcgiRecorder, H2Recorder, HttpRecorder, ScgiRecorder,
                                UpstreamProxyRecorder, UwsgiRecorder)

REALM = "Leak Check"
PASSWORD = "Pr0xyPa55-q7Zx"
TOKEN = token(f"alice:{PASSWORD}".encode())
ALICE = f"Basic {TOKEN}"
WRONG_PASSWORD = "Wr0ngGuess-k4Jv"
WRONG_TOKEN = token(f"alice:{WRONG_PASSWORD}".encode())
WRONG = f"Basic {WRONG_TOKEN}"
BACKEND_LOGIN = basic("backend-user", "backend-pw-Ab9")

SSL_PROXY = """SSLProxyEngine On
SSLProxyVerify none
SSLProxyCheckPeerName off
SSLProxyCheckPeerCN off
SSLProxyCheckPeerExpire off
"""


@dataclass
class Scheme:
    name: str
    recorder: type
    url_scheme: str                 # what ProxyPass names (balancer: the member's)
    modules: list = field(default_factory=list)
    tls: bool = False
    cgi: bool = False               # credentials travel as CGI variables
    websocket: bool = False
    balancer: bool = False
    server_config: str = ""


SCHEMES = {s.name: s for s in [
    Scheme("http", HttpRecorder, "http"),
    Scheme("https", HttpRecorder, "https", ["ssl"], tls=True),
    Scheme("ws", HttpRecorder, "ws", ["proxy_wstunnel"], websocket=True),
    Scheme("wss", HttpRecorder, "wss", ["proxy_wstunnel", "ssl"], tls=True, websocket=True),
    # ws:// is served by mod_proxy_http unless mod_proxy_wstunnel is told to keep it.
    Scheme("ws_wstunnel", HttpRecorder, "ws", ["proxy_wstunnel"], websocket=True,
           server_config="ProxyWebsocketFallbackToProxyHttp Off\n"),
    Scheme("ajp", AjpRecorder, "ajp", ["proxy_ajp"]),
    Scheme("h2c", H2Recorder, "h2c", ["http2", "proxy_http2"]),
    Scheme("h2", H2Recorder, "h2", ["http2", "proxy_http2", "ssl"], tls=True),
    Scheme("fcgi", FcgiRecorder, "fcgi", ["proxy_fcgi"], cgi=True),
    Scheme("scgi", ScgiRecorder, "scgi", ["proxy_scgi"], cgi=True),
    Scheme("uwsgi", UwsgiRecorder, "uwsgi", ["proxy_uwsgi"], cgi=True),
    Scheme("balancer_http", HttpRecorder, "http", balancer=True),
    Scheme("balancer_ajp", AjpRecorder, "ajp", ["proxy_ajp"], balancer=True),
]}
ALL = list(SCHEMES)
# Where Proxy-Chain-Auth is meaningful: the protocol carries request headers.
CARRY_HEADERS = [name for name, s in SCHEMES.items() if not s.cgi]
BALANCER_MODULES = ["proxy_balancer", "slotmem_shm", "lbmethod_byrequests"]


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """A certificate for the TLS recorders (read by this process only)."""
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def users(make_users):
    return make_users({"alice": PASSWORD})


def assert_no_proxy_credentials(recorder, *secrets):
    """No Proxy-Authorization in any form reached @p recorder, and none of
    @p secrets occurs anywhere in the bytes it received."""
    assert recorder.errors == []
    assert recorder.proxy_authorization() == [], \
        f"the {recorder.kind} backend received proxy credentials"
    assert recorder.occurrences(*secrets) == {}, \
        f"the {recorder.kind} backend received the credential bytes"


class Rig:
    """One scheme: its recording backend, and an httpd proxying to it from
    /app (valid-user), /chain (+ Proxy-Chain-Auth), /open (Require all granted),
    /local (Require ip 127.0.0.1), /denied (ErrorDocument 407 /errors/denied.html)
    and /errors/ (an ordinary reverse-proxied scope)."""

    def __init__(self, scheme: Scheme, make_httpd, users, tls_cert) -> None:
        self.scheme = scheme
        self.recorder = scheme.recorder(tls=tls_cert if scheme.tls else None, kind=scheme.name)
        try:
            self.httpd = make_httpd(self.config(users), extra_modules=self.modules())
        except BaseException:
            self.recorder.stop()
            raise

    def modules(self) -> list:
        mods = list(self.scheme.modules)
        if self.scheme.balancer:
            mods += BALANCER_MODULES
        return mods

    def config(self, users) -> str:
        s, port = self.scheme, self.recorder.port
        member = f"{s.url_scheme}://127.0.0.1:{port}"
        text = (SSL_PROXY if s.tls else "") + s.server_config
        if s.balancer:
            text += f'<Proxy "balancer://members">\n    BalancerMember {member}\n</Proxy>\n'
            target = "balancer://members"
        else:
            target = member
        cgi = "    CGIPassAuth On\n" if s.cgi else ""

        def location(path, auth, extra=""):
            return f"<Location {path}>\n    ProxyPass {target}{path}\n{auth}{cgi}{extra}</Location>\n"
        scope = proxy_basic_auth(users, REALM)
        return text + "".join([
            location("/app", scope),
            location("/chain", scope, "    SetEnv Proxy-Chain-Auth On\n"),
            location("/open", proxy_basic_auth(users, REALM, "all granted")),
            location("/local", proxy_basic_auth(users, REALM, "ip 127.0.0.1")),
            location("/denied", scope, "    ErrorDocument 407 /errors/denied.html\n"),
            location("/errors/", ""),
        ])

    def get(self, path: str, *headers: str) -> Response:
        if self.scheme.websocket:
            return ws_exchange(f"ws://127.0.0.1:{self.httpd.port}{path}",
                               dict(h.split(": ", 1) for h in headers))
        args = []
        for h in headers:
            args += ["-H", h]
        return curl(*args, f"{self.httpd.url}{path}")

    def ok(self) -> int:
        return 101 if self.scheme.websocket else 200

    def backend_authorization(self, exchange) -> list:
        """The backend's own Authorization as the backend saw it."""
        if self.scheme.cgi:
            return [v for k, v in exchange.params.items() if k == "HTTP_AUTHORIZATION"]
        return exchange.header("authorization")


@pytest.fixture
def rig(request, make_httpd, users, tls_cert):
    r = Rig(SCHEMES[request.param], make_httpd, users, tls_cert)
    yield r
    r.recorder.stop()


@pytest.mark.parametrize("rig", ALL, indirect=True)
def test_valid_proxy_credentials_never_reach_the_backend(rig):
    r = rig.get("/app", f"Proxy-Authorization: {ALICE}", f"Authorization: {BACKEND_LOGIN}")
    assert r.status == rig.ok(), r.body
    [seen] = rig.recorder.wait_for(1)
    assert seen.path == "/app"
    # The recorder sees the request's headers: the backend's own login is there.
    assert rig.backend_authorization(seen) == [BACKEND_LOGIN]
    assert_no_proxy_credentials(rig.recorder, TOKEN, PASSWORD)


@pytest.mark.parametrize("rig", CARRY_HEADERS, indirect=True)
def test_proxy_chain_auth_forwards_the_proxy_credentials(rig):
    r = rig.get("/chain", f"Proxy-Authorization: {ALICE}")
    assert r.status == rig.ok(), r.body
    [seen] = rig.recorder.wait_for(1)
    assert seen.path == "/chain"
    assert seen.header("proxy-authorization") == [ALICE]


@pytest.mark.parametrize("rig", ALL, indirect=True)
def test_access_granted_without_a_user_forwards_no_proxy_credentials(rig):
    for path in ("/open", "/local"):
        r = rig.get(path, f"Proxy-Authorization: {ALICE}")
        assert r.status == rig.ok(), (path, r.body)
    seen = rig.recorder.wait_for(2)
    assert [e.path for e in seen] == ["/open", "/local"]
    assert_no_proxy_credentials(rig.recorder, TOKEN, PASSWORD)


@pytest.mark.parametrize("rig", ALL, indirect=True)
def test_proxied_error_document_of_a_failed_login_gets_no_proxy_credentials(rig):
    r = rig.get("/denied", f"Proxy-Authorization: {WRONG}")
    # The client gets the error page's status (mod_proxy sets the backend's:
    # 200, or 101 for a WebSocket handshake), under the proxy's challenge.
    if not rig.scheme.websocket:
        assert r.header("Proxy-Authenticate") is not None
    [seen] = rig.recorder.wait_for(1)
    assert seen.path == "/errors/denied.html"
    assert_no_proxy_credentials(rig.recorder, WRONG_TOKEN, WRONG_PASSWORD)


# ---------------------------------------------------------------- forward proxy, CONNECT, ProxyRemote

ACCESS = {
    "valid_user": "    Require valid-user\n",
    "granted_without_user": "    Require ip 127.0.0.1\n",
    "proxy_chain_auth": "    Require valid-user\n    SetEnv Proxy-Chain-Auth On\n",
}


def forward_scope(users, access: str) -> str:
    return (f'<Proxy "*">\n    AuthType ProxyBasic\n    AuthName "{REALM}"\n'
            f"    AuthUserFile {users}\n{ACCESS[access]}</Proxy>\n")


class ForwardRig:
    """A forward proxy (ProxyRequests On, <Proxy "*"> ProxyBasic) in front of a
    TLS target and a plain target, optionally chained to an upstream proxy
    (ProxyRemote * ...) that records what it gets and relays CONNECT tunnels."""

    def __init__(self, make_httpd, users, tls_cert, access: str, remote: bool) -> None:
        self.tls_target = HttpRecorder(tls=tls_cert)
        self.plain_target = HttpRecorder()
        self.upstream = UpstreamProxyRecorder()
        self.recorders = [self.tls_target, self.plain_target, self.upstream]
        remote_line = f"ProxyRemote * http://127.0.0.1:{self.upstream.port}\n" if remote else ""
        try:
            self.httpd = make_httpd(
                f"ProxyRequests On\nAllowCONNECT {self.tls_target.port}\n{remote_line}{SSL_PROXY}"
                + forward_scope(users, access),
                extra_modules=["proxy_connect", "ssl"])
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for r in self.recorders:
            r.stop()

    def connect(self, user_password: str = PASSWORD) -> Response:
        """curl through a CONNECT tunnel to the TLS target (GET /tunnel inside)."""
        return curl("-x", self.httpd.url, "--proxy-user", f"alice:{user_password}", "-k",
                    "-H", f"Authorization: {BACKEND_LOGIN}",
                    f"https://127.0.0.1:{self.tls_target.port}/tunnel")

    def https_url(self) -> Response:
        """GET https://target/... sent to the proxy as an absolute URI: httpd itself
        speaks TLS to the target (through a CONNECT to the ProxyRemote, if any)."""
        target = f"127.0.0.1:{self.tls_target.port}"
        with RawHttp(self.httpd.port) as conn:
            conn.send(f"GET https://{target}/fwd-https HTTP/1.1\r\nHost: {target}\r\n"
                      f"Proxy-Authorization: {ALICE}\r\nAuthorization: {BACKEND_LOGIN}\r\n"
                      "Connection: close\r\n\r\n".encode())
            return conn.read_response()

    def http_url(self) -> Response:
        return curl("-x", self.httpd.url, "--proxy-user", f"alice:{PASSWORD}",
                    "-H", f"Authorization: {BACKEND_LOGIN}",
                    f"http://127.0.0.1:{self.plain_target.port}/fwd-http")


@pytest.fixture
def forward(make_httpd, users, tls_cert):
    rigs = []

    def factory(access: str = "valid_user", remote: bool = True) -> ForwardRig:
        rigs.append(ForwardRig(make_httpd, users, tls_cert, access, remote))
        return rigs[-1]
    yield factory
    for r in rigs:
        r.stop()


def test_connect_tunnel_target_sees_no_proxy_credentials(forward):
    rig = forward(remote=False)
    r = rig.connect()
    assert r.status == 200
    [seen] = rig.tls_target.wait_for(1)
    assert (seen.method, seen.path) == ("GET", "/tunnel")
    assert seen.header("authorization") == [BACKEND_LOGIN]
    assert_no_proxy_credentials(rig.tls_target, TOKEN, PASSWORD)


@pytest.mark.parametrize("access", ["valid_user", "granted_without_user", "proxy_chain_auth"])
def test_connect_relayed_to_a_remote_proxy_never_carries_proxy_credentials(forward, access):
    """mod_proxy_connect sends a ProxyRemote only "CONNECT host:port" and
    "Proxy-agent": not even Proxy-Chain-Auth hands the credentials on."""
    rig = forward(access)
    r = rig.connect()
    assert r.status == 200
    [connect] = rig.upstream.wait_for(1)
    assert (connect.method, connect.path) == ("CONNECT", f"127.0.0.1:{rig.tls_target.port}")
    assert [k.lower() for k, _ in connect.headers] == ["proxy-agent"]
    [seen] = rig.tls_target.wait_for(1)
    assert seen.header("authorization") == [BACKEND_LOGIN]
    for recorder in (rig.upstream, rig.tls_target):
        assert_no_proxy_credentials(recorder, TOKEN, PASSWORD)


@pytest.mark.parametrize("access", ["valid_user", "granted_without_user"])
def test_https_url_relayed_to_a_remote_proxy_carries_no_proxy_credentials(forward, access):
    """For an https:// URL httpd opens its own CONNECT to the ProxyRemote
    (ap_proxy_determine_connection), which would carry Proxy-Authorization
    whenever r->user is unset, then speaks TLS to the target."""
    rig = forward(access)
    r = rig.https_url()
    assert r.status == 200, r.body
    [connect] = rig.upstream.wait_for(1)
    assert (connect.method, connect.path) == ("CONNECT", f"127.0.0.1:{rig.tls_target.port}")
    [seen] = rig.tls_target.wait_for(1)
    assert seen.path == "/fwd-https"
    assert seen.header("authorization") == [BACKEND_LOGIN]
    for recorder in (rig.upstream, rig.tls_target):
        assert_no_proxy_credentials(recorder, TOKEN, PASSWORD)


@pytest.mark.parametrize("access", ["valid_user", "granted_without_user"])
def test_http_url_relayed_to_a_remote_proxy_carries_no_proxy_credentials(forward, access):
    rig = forward(access)
    r = rig.http_url()
    assert r.status == 200
    [seen] = rig.upstream.wait_for(1)
    assert (seen.method, seen.path) == ("GET", f"http://127.0.0.1:{rig.plain_target.port}/fwd-http")
    assert seen.header("authorization") == [BACKEND_LOGIN]
    assert rig.plain_target.exchanges == []
    assert_no_proxy_credentials(rig.upstream, TOKEN, PASSWORD)


def test_proxy_chain_auth_hands_the_credentials_to_the_remote_proxy(forward):
    rig = forward("proxy_chain_auth")
    assert rig.http_url().status == 200
    [seen] = rig.upstream.wait_for(1)
    assert seen.header("proxy-authorization") == [ALICE]
    # https:// URL: in httpd's CONNECT to the ProxyRemote, and in the request
    # to the target inside the tunnel.
    assert rig.https_url().status == 200
    [_, connect] = rig.upstream.wait_for(2)
    assert connect.method == "CONNECT"
    assert connect.header("proxy-authorization") == [ALICE]
    [seen] = rig.tls_target.wait_for(1)
    assert seen.header("proxy-authorization") == [ALICE]


@pytest.fixture
def forward_with_error_page(make_httpd, users):
    """A forward proxy whose ErrorDocument 407 is a local page reverse-proxied
    to a recorder, in an ordinary scope (AuthType None, Require all granted)."""
    errors, target = HttpRecorder(), HttpRecorder()
    error_url = f"http://127.0.0.1:{errors.port}/errors/"
    try:
        h = make_httpd(f"""ProxyRequests On
AllowCONNECT {target.port}
ErrorDocument 407 /errors/denied.html
<Location /errors/>
    ProxyPass {error_url}
</Location>
{forward_scope(users, "valid_user")}<Proxy "{error_url}*">
    AuthType None
    Require all granted
</Proxy>
""", extra_modules=["proxy_connect"])
    except BaseException:
        errors.stop()
        target.stop()
        raise
    yield h, errors, target
    errors.stop()
    target.stop()


@pytest.mark.parametrize("method", ["CONNECT", "GET"])
def test_proxied_error_document_of_a_failed_forward_login_gets_no_proxy_credentials(
        forward_with_error_page, method):
    h, errors, target = forward_with_error_page
    where = f"127.0.0.1:{target.port}"
    with RawHttp(h.port) as conn:
        conn.send(f"{method} {where if method == 'CONNECT' else f'http://{where}/page'} HTTP/1.1\r\n"
                  f"Host: {where}\r\nProxy-Authorization: {WRONG}\r\n"
                  f"Authorization: {BACKEND_LOGIN}\r\nConnection: close\r\n\r\n".encode())
        r = conn.read_response()
    assert r.header("Proxy-Authenticate") is not None
    [seen] = errors.wait_for(1)
    assert seen.path == "/errors/denied.html"
    assert target.exchanges == []
    assert_no_proxy_credentials(errors, WRONG_TOKEN, WRONG_PASSWORD)
