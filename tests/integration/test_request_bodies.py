"""Methods, bodies and protocol versions meet the 407 the way HTTP says they should.

HEAD gets the challenge without a body. A POST refused with 407 never reaches
the backend, and httpd reads its body off the connection, so the next request
on the same keep-alive connection is parsed correctly (even when the refused
body looks like a request). A client that waits on Expect: 100-continue gets
the 407 instead of the go-ahead and never has to send its body. HTTP/1.0
clients get the same challenge.
"""

import pytest

from harness import RawHttp, assert_challenged, basic, curl, curl_verbose, proxied_location, proxy_basic_auth

REALM = "Uploads"
ALICE = basic("alice", "secret")


@pytest.fixture
def proxy(make_httpd, backend, users):
    return make_httpd(proxied_location("/app", backend.url, users, REALM))


def request(method, path, headers=(), body=b"", version="HTTP/1.1"):
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ------------------------------------------------------------ HEAD

def test_head_gets_407_with_the_challenge_and_no_body(proxy, backend):
    with RawHttp(proxy.port) as conn:
        conn.send(request("HEAD", "/app"))
        assert_challenged(conn.read_response(head=True), REALM)
        # Body bytes after the HEAD response would garble the next response.
        conn.send(request("HEAD", "/app", [f"Proxy-Authorization: {ALICE}"]))
        r = conn.read_response(head=True)
        assert r.status == 200
        assert r.header("X-Backend") == "echo"
    assert [d["method"] for d in backend.received] == ["HEAD"]


# ------------------------------------------------------------ bodies and keep-alive

@pytest.mark.parametrize("size", [5, 200_000])
def test_refused_post_body_is_not_forwarded_and_the_connection_stays_usable(proxy, backend, size):
    # If httpd left the refused body on the connection, it would be parsed as
    # the next request: make it look like one.
    smuggled = request("GET", "/app/smuggled", [f"Proxy-Authorization: {ALICE}"])
    body = (smuggled + b"x" * size)[:max(size, len(smuggled))]
    with RawHttp(proxy.port) as conn:
        conn.send(request("POST", "/app/upload", ["Content-Type: application/octet-stream"], body))
        refused = conn.read_response()
        assert_challenged(refused, REALM)
        assert "close" not in ",".join(refused.headers.get("connection", [])).lower()
        conn.send(request("POST", "/app/upload", [f"Proxy-Authorization: {ALICE}"], b"payload"))
        accepted = conn.read_response()
    assert accepted.status == 200
    assert accepted.json()["path"] == "/app/upload"
    assert accepted.json()["body_length"] == len(b"payload")
    assert backend.paths() == ["/app/upload"]


def test_refused_chunked_post_is_not_forwarded_and_the_connection_stays_usable(proxy, backend):
    chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    with RawHttp(proxy.port) as conn:
        conn.send(request("POST", "/app/upload", ["Transfer-Encoding: chunked"]) + chunked)
        assert_challenged(conn.read_response(), REALM)
        conn.send(request("POST", "/app/upload", [f"Proxy-Authorization: {ALICE}", "Transfer-Encoding: chunked"])
                  + chunked)
        accepted = conn.read_response()
    assert accepted.status == 200
    assert accepted.json()["body_length"] == len(b"hello world")
    assert len(backend.received) == 1


def test_curl_reuses_the_connection_after_a_407(proxy, backend):
    # Two URLs in one curl run: the second goes over the connection of the first.
    proc = curl_verbose("-d", "a=1", f"{proxy.url}/app/first", "--next",
                        "-H", f"Proxy-Authorization: {ALICE}", "-d", "b=2", f"{proxy.url}/app/second")
    assert proc.returncode == 0, proc.stderr
    assert "< HTTP/1.1 407 Proxy Authentication Required" in proc.stderr
    assert "Re-using existing connection" in proc.stderr
    assert '"path": "/app/second"' in proc.stdout
    assert backend.paths() == ["/app/second"]


# ------------------------------------------------------------ Expect: 100-continue

def test_expect_100_continue_gets_407_before_the_body_is_sent(proxy, backend):
    headers = ["Expect: 100-continue", "Content-Length: 1000000", "Content-Type: application/octet-stream"]
    with RawHttp(proxy.port, timeout=5) as conn:
        conn.send(request("POST", "/app/upload", headers))
        r = conn.read_response()          # no body sent: only the headers are out
        assert r.status_line.split()[1] == "407"
        assert_challenged(r, REALM)
    assert backend.received == []


def test_expect_100_continue_with_credentials_gets_the_go_ahead(proxy, backend):
    headers = ["Expect: 100-continue", f"Proxy-Authorization: {ALICE}", "Content-Length: 7"]
    with RawHttp(proxy.port, timeout=5) as conn:
        conn.send(request("POST", "/app/upload", headers))
        interim = conn.read_response()
        assert interim.status == 100
        conn.send(b"payload")
        r = conn.read_response()
    assert r.status == 200
    assert r.json()["body_length"] == 7


# ------------------------------------------------------------ HTTP/1.0

def test_http_1_0_client_gets_the_challenge_and_passes_with_credentials(proxy, backend):
    r = curl("-0", f"{proxy.url}/app")
    assert_challenged(r, REALM)
    r = curl("-0", "-H", f"Proxy-Authorization: {ALICE}", f"{proxy.url}/app")
    assert r.status == 200
    assert r.json()["path"] == "/app"
    assert proxy.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /app HTTP/1\.0" 200$')


def test_http_1_0_request_without_host_header_gets_the_challenge(proxy):
    with RawHttp(proxy.port) as conn:
        conn.send(b"GET /app HTTP/1.0\r\n\r\n")
        r = conn.read_response()
    assert_challenged(r, REALM)


def test_http_1_0_forward_proxy_request_gets_the_challenge(make_httpd, backend, users):
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
{proxy_basic_auth(users, REALM)}</Proxy>
""")
    assert_challenged(curl("-0", "-x", h.url, f"{backend.url}/page"), REALM)
    r = curl("-0", "-x", h.url, "--proxy-user", "alice:secret", f"{backend.url}/page")
    assert r.status == 200
    assert r.json()["path"] == "/page"
