"""Protocol upgrades and HTTP/2 in front of a ProxyBasic reverse proxy.

A WebSocket handshake is an ordinary GET until the proxy lets it through:
without proxy credentials it gets 407 and never reaches the WebSocket server
(mod_proxy_wstunnel's ws:// and mod_proxy_http's upgrade=websocket alike).
HTTP/2 clients (mod_http2 over TLS) get the same 407 and pass with the same
credentials. The WebSocket side is the python3-websockets library, client and
server.
"""

import asyncio
import threading

import pytest
import websockets

from harness import (assert_challenged, basic, curl, proxied_location, proxy_basic_auth, self_signed_cert,
                     ws_exchange)

REALM = "Realtime"
ALICE = basic("alice", "secret")


class EchoWebSocketServer:
    """A WebSocket server (python3-websockets) echoing every message, in its own thread."""

    def __init__(self) -> None:
        self.handshakes = []          # request paths of the accepted handshakes
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def echo(ws, path):
            self.handshakes.append((path, dict(ws.request_headers)))
            async for message in ws:
                await ws.send(f"echo: {message}")

        async def main():
            self.server = await websockets.serve(echo, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            await self.server.wait_closed()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(10)


@pytest.fixture
def ws_server():
    s = EchoWebSocketServer()
    yield s
    s.stop()


@pytest.fixture
def ws_proxy(make_httpd, ws_server, users):
    return make_httpd(f"""
<Location /tunnel>
    ProxyPass ws://127.0.0.1:{ws_server.port}/tunnel
{proxy_basic_auth(users, REALM)}</Location>
<Location /upgrade>
    ProxyPass http://127.0.0.1:{ws_server.port}/upgrade upgrade=websocket
{proxy_basic_auth(users, REALM)}</Location>
""", extra_modules=["proxy_wstunnel"])


@pytest.mark.parametrize("path", ["/tunnel", "/upgrade"], ids=["wstunnel", "upgrade_websocket"])
def test_websocket_handshake_without_credentials_gets_407(ws_proxy, ws_server, path):
    for headers in ({}, {"Proxy-Authorization": basic("alice", "wrong")}):
        assert_challenged(ws_exchange(f"ws://127.0.0.1:{ws_proxy.port}{path}", headers), REALM)
    assert ws_server.handshakes == []


@pytest.mark.parametrize("path", ["/tunnel", "/upgrade"], ids=["wstunnel", "upgrade_websocket"])
def test_websocket_with_credentials_is_upgraded_and_echoes(ws_proxy, ws_server, path):
    r = ws_exchange(f"ws://127.0.0.1:{ws_proxy.port}{path}", {"Proxy-Authorization": ALICE})
    assert r.status == 101
    assert r.body == b"echo: hello"
    [(seen_path, seen_headers)] = ws_server.handshakes
    assert seen_path == path
    assert "Proxy-Authorization" not in seen_headers
    assert ws_proxy.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {path} HTTP/1\.1" 101$')


@pytest.fixture
def h2_proxy(make_httpd, backend, users, server_root):
    cert, key = self_signed_cert(f"{server_root}/tls")
    return make_httpd(f"""
Protocols h2 http/1.1
SSLSessionCache shmcb:run/ssl_scache(512000)
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
{proxied_location("/app", backend.url, users, REALM)}""", extra_modules=["ssl", "socache_shmcb", "http2"])


def h2(h, *args):
    return curl("--http2", "-k", *args, f"https://127.0.0.1:{h.port}/app")


def test_http2_client_without_credentials_gets_407_over_http2(h2_proxy, backend):
    r = h2(h2_proxy)
    assert r.status_line.startswith("HTTP/2 ")
    assert_challenged(r, REALM)
    assert backend.received == []


def test_http2_client_with_credentials_reaches_the_backend(h2_proxy, backend):
    r = h2(h2_proxy, "-H", f"Proxy-Authorization: {ALICE}")
    assert r.status_line.startswith("HTTP/2 ")
    assert r.status == 200
    assert r.json()["path"] == "/app"
    assert "proxy-authorization" not in r.backend_headers()
    assert h2_proxy.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /app HTTP/2\.0" 200$')
