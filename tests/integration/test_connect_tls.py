"""CONNECT through the authenticating forward proxy to a real TLS server.

The TLS backend is a second httpd with mod_ssl and a certificate made by
openssl for this test. curl asks the proxy for a tunnel (CONNECT, handled by
mod_proxy_connect) and speaks TLS to the backend through it. Without the
right credentials the proxy answers the CONNECT itself with 407: no tunnel
opens and the TLS server never sees a connection.
"""

import ssl

import pytest

from harness import RawHttp, assert_challenged, basic, curl_verbose, proxy_challenge, self_signed_cert

REALM = "Corporate Proxy"
PAGE = "hello over TLS\n"


@pytest.fixture
def tls_backend(make_httpd, server_root):
    cert, key = self_signed_cert(f"{server_root}/tls")
    h = make_httpd(start=False, extra_modules=["ssl", "socache_shmcb"])
    h.body = f"""
SSLSessionCache shmcb:run/ssl_scache(512000)
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
"""
    (h.root / "htdocs" / "index.html").write_text(PAGE)
    return h.start()


@pytest.fixture
def proxy(make_httpd, users, tls_backend):
    return make_httpd(f"""
ProxyRequests On
AllowCONNECT {tls_backend.port}
<Proxy "*">
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    Require valid-user
</Proxy>
""", extra_modules=["proxy_connect"])


def curl_through(proxy, *args):
    """curl -v through the proxy to the TLS backend: (exit code, stdout, stderr)."""
    proc = curl_verbose("-x", proxy.url, "-k", *args)
    return proc.returncode, proc.stdout, proc.stderr


def tls_requests(tls_backend):
    return [line for line in tls_backend.access_log().splitlines() if line.strip()]


def test_connect_with_credentials_reaches_the_tls_backend(proxy, tls_backend):
    rc, out, err = curl_through(proxy, "--proxy-user", "alice:secret",
                                f"https://127.0.0.1:{tls_backend.port}/index.html")
    assert rc == 0, err
    assert out == PAGE
    assert "CONNECT tunnel established, response 200" in err   # the tunnel, then TLS inside it
    assert "SSL connection using" in err
    assert proxy.wait_for_access_log(
        rf'^127\.0\.0\.1 alice "CONNECT 127\.0\.0\.1:{tls_backend.port} HTTP/1\.1" 200$')
    assert tls_backend.wait_for_access_log(r'"GET /index\.html HTTP/1\.1" 200$')


@pytest.mark.parametrize("credentials", [[], ["--proxy-user", "alice:wrong"]], ids=["none", "wrong"])
def test_connect_without_valid_credentials_gets_407_before_any_tunnel(proxy, tls_backend, credentials):
    rc, out, err = curl_through(proxy, *credentials, f"https://127.0.0.1:{tls_backend.port}/index.html")
    assert rc != 0
    assert "CONNECT tunnel failed, response 407" in err
    assert f"< Proxy-Authenticate: {proxy_challenge(REALM)}" in err
    assert "SSL connection using" not in err
    assert out == ""
    assert proxy.wait_for_access_log(rf'"CONNECT 127\.0\.0\.1:{tls_backend.port} HTTP/1\.1" 407$')
    assert tls_requests(tls_backend) == []


def test_connect_407_leaves_no_tunnel_behind(proxy, tls_backend):
    """Bytes sent after a refused CONNECT are read as HTTP by the proxy, never relayed:
    the same connection can then authenticate and get its tunnel."""
    with RawHttp(proxy.port) as conn:
        conn.send(f"CONNECT 127.0.0.1:{tls_backend.port} HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{tls_backend.port}\r\n\r\n".encode())
        assert_challenged(conn.read_response(), REALM)
        # Through a tunnel this would reach the TLS server as garbage; here the
        # proxy itself parses it as the next request on the connection.
        conn.send(f"CONNECT 127.0.0.1:{tls_backend.port} HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{tls_backend.port}\r\n"
                  f"Proxy-Authorization: {basic('alice', 'secret')}\r\n\r\n".encode())
        r = conn.read_response(head=True)   # a 2xx to CONNECT has no body: the tunnel follows
        assert r.status == 200
        assert tls_requests(tls_backend) == []
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn.sock = context.wrap_socket(conn.sock)
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        r = conn.read_response()
        assert r.status == 200
        assert r.body == PAGE.encode()
    assert tls_backend.wait_for_access_log(r'"GET /index\.html HTTP/1\.1" 200$')
