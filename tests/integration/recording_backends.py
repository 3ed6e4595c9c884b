"""Backends that record exactly what httpd sent them, for every proxy scheme.

Each recorder listens on a free loopback port, speaks just enough of its
protocol to give mod_proxy a valid answer, and keeps, per request, the raw
bytes it read plus what it parsed out of them: request headers (HTTP/1.1,
HTTP/2, AJP13, the CONNECT request of an upstream proxy) or CGI variables
(FastCGI, SCGI, uWSGI). Tests can so assert both "no Proxy-Authorization
header / HTTP_PROXY_AUTHORIZATION variable" and "the credential bytes occur
nowhere in what the backend received".

Where the wire form would hide a value (HPACK may Huffman-code header values)
the recorder also keeps a decoded copy of the header block next to the raw
bytes; for TLS recorders the raw bytes are the decrypted stream.

    HttpRecorder        http:// (and ws:// upgrades: answers 101, echoes frames)
    HttpRecorder(tls=)  https:// and wss://
    AjpRecorder         ajp://   (FORWARD_REQUEST -> SEND_HEADERS, SEND_BODY_CHUNK, END_RESPONSE)
    FcgiRecorder        fcgi://  (BEGIN_REQUEST, PARAMS, STDIN -> STDOUT, END_REQUEST)
    ScgiRecorder        scgi://  (netstring of variables -> CGI response)
    UwsgiRecorder       uwsgi:// (packet of variables -> HTTP response)
    H2Recorder          h2c://, and h2:// with tls= (ALPN "h2"), via python3-h2
    UpstreamProxyRecorder  the next proxy httpd chains to (ProxyRemote): records
                        a CONNECT, answers 200 and tunnels to the target; records
                        and answers an absolute-URI request itself
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import h2.config        # python3-h2
import h2.connection
import h2.events


class PeerClosed(Exception):
    """The peer closed the connection before a complete message arrived."""


@dataclass
class Exchange:
    """One request a recorder received."""
    kind: str
    method: str = ""
    path: str = ""
    headers: list = field(default_factory=list)   # [(name, value)] as received, in order
    params: dict = field(default_factory=dict)    # CGI variables / AJP attributes / h2 pseudo-headers
    body: bytes = b""
    raw: bytes = b""                              # the bytes of this request on the wire
    decoded: bytes = b""                          # decoded header block where the wire form hides it

    def header(self, name: str) -> list:
        """Values of request header @p name (case-insensitive)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


def _is_proxy_authorization(name: str) -> bool:
    """Proxy-Authorization under any spelling a protocol gives it: the header
    (any case), or the CGI variable HTTP_PROXY_AUTHORIZATION."""
    norm = name.lower().replace("_", "-")
    if norm.startswith("http-"):
        norm = norm[5:]
    return norm == "proxy-authorization"


class _Conn:
    """A server-side connection whose every byte read is kept."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.raw = bytearray()      # everything ever read
        self.buffer = b""           # read but not yet consumed
        self.mark = 0               # start of the current message in raw

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if chunk:
            self.raw += chunk
            self.buffer += chunk
        return bool(chunk)

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise PeerClosed(f"wanted {n} bytes, have {len(self.buffer)}")
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def read_until(self, delimiter: bytes, limit: int = 1 << 20) -> bytes:
        """Up to and including @p delimiter."""
        while delimiter not in self.buffer:
            if len(self.buffer) > limit or not self._fill():
                raise PeerClosed(f"no {delimiter!r} in {self.buffer[:200]!r}")
        i = self.buffer.index(delimiter) + len(delimiter)
        out, self.buffer = self.buffer[:i], self.buffer[i:]
        return out

    def wait_readable(self) -> bool:
        """False when the peer closed before sending anything more."""
        return bool(self.buffer) or self._fill()

    def start_message(self) -> None:
        self.mark = len(self.raw) - len(self.buffer)

    def message_bytes(self) -> bytes:
        return bytes(self.raw[self.mark:len(self.raw) - len(self.buffer)])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


class Recorder:
    """A threaded loopback server; subclasses implement handle(conn)."""

    kind = "recorder"

    def __init__(self, tls: tuple | None = None, alpn: list | None = None, kind: str | None = None) -> None:
        """@p tls: (cert, key) to speak TLS (server side); @p alpn: protocols to
        offer; @p kind: the name failure messages give this backend."""
        if kind:
            self.kind = kind
        self.exchanges: list[Exchange] = []
        self.errors: list[str] = []             # protocol errors seen by handlers
        self._cond = threading.Condition()
        self._conns: list = []                  # (socket, _Conn) of every accepted connection
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.context = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(tls[0]), str(tls[1]))
            if alpn:
                self.context.set_alpn_protocols(alpn)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.negotiated_alpn: list = []         # ALPN protocol of each TLS connection
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    # -- life cycle
    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return          # listener shut down by stop()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._run_connection, args=(sock,), daemon=True)
            with self._cond:
                if self._stopping:
                    sock.close()
                    return
                self._threads.append(t)
            t.start()

    def _run_connection(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(30)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_side=True)
                with self._cond:
                    self.negotiated_alpn.append(sock.selected_alpn_protocol())
            conn = _Conn(sock)
            with self._cond:
                self._conns.append((sock, conn))
            self.handle(conn)
        except (PeerClosed, OSError, ssl.SSLError):
            pass                 # the proxy closed (idle, shutdown): nothing to record
        except Exception as e:   # a parse error: keep it for the test's failure message
            with self._cond:
                self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            conns = list(self._conns)
        try:
            self.listener.shutdown(socket.SHUT_RDWR)   # wakes accept()
        except OSError:
            pass
        self.listener.close()
        for sock, _ in conns:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)   # wakes recv(), TLS or not
            except OSError:
                pass
        self._accepter.join(10)
        for t in list(self._threads):
            t.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- recording
    def handle(self, conn: _Conn) -> None:
        raise NotImplementedError

    def record(self, exchange: Exchange) -> None:
        with self._cond:
            self.exchanges.append(exchange)
            self._cond.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Exchange]:
        """The first @p count exchanges, once that many arrived (AssertionError after @p timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.exchanges) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.kind} recorder got {len(self.exchanges)} of {count} "
                                         f"requests in {timeout}s; errors: {self.errors}")
                self._cond.wait(left)
            return list(self.exchanges[:count])

    def raw(self) -> bytes:
        """Every byte received on every connection, then every decoded header block."""
        with self._cond:
            return (b"".join(bytes(c.raw) for _, c in self._conns)
                    + b"".join(e.decoded for e in self.exchanges))

    def proxy_authorization(self) -> list:
        """Every Proxy-Authorization this recorder received, as (where, name, value):
        a header of any case, or a CGI variable / attribute like HTTP_PROXY_AUTHORIZATION."""
        found = []
        with self._cond:
            for e in self.exchanges:
                found += [("header", k, v) for k, v in e.headers if _is_proxy_authorization(k)]
                found += [("param", k, v) for k, v in e.params.items() if _is_proxy_authorization(k)]
        return found

    def occurrences(self, *needles) -> dict:
        """How often each of @p needles (str or bytes) occurs in raw(), only those found."""
        raw = self.raw()
        out = {}
        for n in needles:
            b = n.encode() if isinstance(n, str) else n
            if b and raw.count(b):
                out[n] = raw.count(b)
        return out


# ---------------------------------------------------------------- HTTP/1.1, WebSocket

def _parse_http_head(head: bytes):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    headers = []
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return parts, headers


def _read_http_body(conn: _Conn, headers: list) -> bytes:
    def get(name):
        return [v for k, v in headers if k.lower() == name]
    if any("chunked" in v.lower() for v in get("transfer-encoding")):
        body = b""
        while True:
            size = int(conn.read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while conn.read_until(b"\r\n") != b"\r\n":
                    pass
                return body
            body += conn.read_exact(size)
            conn.read_exact(2)
    length = get("content-length")
    return conn.read_exact(int(length[0])) if length else b""


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_read_frame(conn: _Conn):
    b0, b1 = conn.read_exact(2)
    opcode, masked, length = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", conn.read_exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", conn.read_exact(8))[0]
    mask = conn.read_exact(4) if masked else b"\0\0\0\0"
    payload = bytes(c ^ mask[i % 4] for i, c in enumerate(conn.read_exact(length)))
    return opcode, payload


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    else:
        head += bytes([126]) + struct.pack("!H", len(payload))
    return head + payload


class HttpRecorder(Recorder):
    """HTTP/1.1 echo: answers each request 200 with a JSON of what it got, then
    closes. A WebSocket handshake (Upgrade: websocket) gets 101, then every
    text/binary message is echoed as "echo: <message>" until a close frame."""

    kind = "http"

    def handle(self, conn: _Conn) -> None:
        conn.start_message()
        head = conn.read_until(b"\r\n\r\n")
        (method, path, *_), headers = _parse_http_head(head)
        upgrade = any(k.lower() == "upgrade" and v.lower() == "websocket" for k, v in headers)
        body = b"" if upgrade else _read_http_body(conn, headers)
        self.record(Exchange(self.kind, method, path, headers, body=body, raw=conn.message_bytes()))
        if upgrade:
            key = next(v for k, v in headers if k.lower() == "sec-websocket-key")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            conn.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            while True:
                opcode, payload = _ws_read_frame(conn)
                if opcode in (1, 2):
                    conn.send(_ws_frame(opcode, b"echo: " + payload))
                elif opcode == 9:
                    conn.send(_ws_frame(10, payload))
                elif opcode == 8:
                    conn.send(_ws_frame(8, payload[:2]))
                    return
        out = json.dumps({"kind": self.kind, "method": method, "path": path,
                          "headers": headers}).encode()
        conn.send((f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(out)}\r\nX-Recorder: {self.kind}\r\n"
                   f"Connection: close\r\n\r\n").encode() + out)


# ---------------------------------------------------------------- AJP13

AJP_METHODS = {1: "OPTIONS", 2: "GET", 3: "HEAD", 4: "POST", 5: "PUT", 6: "DELETE", 7: "TRACE"}
AJP_HEADERS = {0xA001: "accept", 0xA002: "accept-charset", 0xA003: "accept-encoding",
               0xA004: "accept-language", 0xA005: "authorization", 0xA006: "connection",
               0xA007: "content-type", 0xA008: "content-length", 0xA009: "cookie",
               0xA00A: "cookie2", 0xA00B: "host", 0xA00C: "pragma", 0xA00D: "referer",
               0xA00E: "user-agent"}
AJP_ATTRIBUTES = {0x01: "context", 0x02: "servlet_path", 0x03: "remote_user", 0x04: "auth_type",
                  0x05: "query_string", 0x06: "route", 0x07: "ssl_cert", 0x08: "ssl_cipher",
                  0x09: "ssl_session", 0x0C: "secret", 0x0D: "stored_method"}


class _AjpReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def int16(self) -> int:
        self.pos += 2
        return struct.unpack("!H", self.data[self.pos - 2:self.pos])[0]

    def peek16(self) -> int:
        return struct.unpack("!H", self.data[self.pos:self.pos + 2])[0]

    def string(self) -> str | None:
        n = self.int16()
        if n == 0xFFFF:
            return None
        s = self.data[self.pos:self.pos + n].decode("latin-1")
        if self.data[self.pos + n] != 0:
            raise ValueError(f"AJP string not NUL-terminated at {self.pos + n}")
        self.pos += n + 1
        return s


def _ajp_string(s: str) -> bytes:
    b = s.encode("latin-1")
    return struct.pack("!H", len(b)) + b + b"\0"


def _ajp_packet(payload: bytes) -> bytes:
    return b"AB" + struct.pack("!H", len(payload)) + payload


class AjpRecorder(Recorder):
    """AJP13 container: parses each FORWARD_REQUEST (headers, attributes) and
    answers SEND_HEADERS 200, one SEND_BODY_CHUNK, END_RESPONSE (reuse)."""

    kind = "ajp"

    def _packet(self, conn: _Conn) -> bytes:
        head = conn.read_exact(4)
        if head[:2] != b"\x12\x34":
            raise ValueError(f"bad AJP magic {head!r}")
        return conn.read_exact(struct.unpack("!H", head[2:])[0])

    def handle(self, conn: _Conn) -> None:
        while conn.wait_readable():
            conn.start_message()
            payload = self._packet(conn)
            r = _AjpReader(payload)
            prefix = r.byte()
            if prefix == 10:                        # CPING
                conn.send(_ajp_packet(b"\x09"))     # CPONG
                continue
            if prefix != 2:
                raise ValueError(f"unexpected AJP packet type {prefix}")
            method = AJP_METHODS.get(r.byte(), "?")
            protocol, uri = r.string(), r.string()
            params = {"protocol": protocol, "remote_addr": r.string(), "remote_host": r.string(),
                      "server_name": r.string()}
            params["server_port"] = str(r.int16())
            params["is_ssl"] = str(r.byte())
            headers = []
            for _ in range(r.int16()):
                code = r.peek16()
                if code & 0xFF00 == 0xA000:
                    r.int16()
                    name = AJP_HEADERS[code]
                else:
                    name = r.string()
                headers.append((name, r.string()))
            while True:
                code = r.byte()
                if code == 0xFF:
                    break
                if code == 0x0A:                    # req_attribute: name, value
                    name = r.string()
                    params[name] = r.string()
                elif code == 0x0B:                  # ssl_key_size: int
                    params["ssl_key_size"] = str(r.int16())
                else:
                    params[AJP_ATTRIBUTES.get(code, f"attr_{code:#x}")] = r.string()
            body = b""
            length = int(next((v for k, v in headers if k == "content-length"), "0"))
            while len(body) < length:               # the first body packet comes unasked
                data = self._packet(conn)
                if len(data) < 2 or struct.unpack("!H", data[:2])[0] == 0:
                    break                           # empty packet: the body ended early
                body += data[2:2 + struct.unpack("!H", data[:2])[0]]
                if len(body) < length:
                    conn.send(_ajp_packet(b"\x06" + struct.pack("!H", 8186)))   # GET_BODY_CHUNK
            self.record(Exchange(self.kind, method, uri, headers, params, body, conn.message_bytes()))
            out = json.dumps({"kind": self.kind, "method": method, "path": uri}).encode()
            conn.send(_ajp_packet(b"\x04" + struct.pack("!H", 200) + _ajp_string("OK")
                                  + struct.pack("!H", 3)
                                  + _ajp_string("Content-Type") + _ajp_string("application/json")
                                  + _ajp_string("Content-Length") + _ajp_string(str(len(out)))
                                  + _ajp_string("X-Recorder") + _ajp_string(self.kind))
                      + _ajp_packet(b"\x03" + struct.pack("!H", len(out)) + out + b"\0")
                      + _ajp_packet(b"\x05\x01"))


# ---------------------------------------------------------------- CGI-style protocols

def _cgi_path(params: dict) -> str:
    """The path httpd asked the backend for: from SCRIPT_FILENAME
    ("proxy:fcgi://host:port/path"); REQUEST_URI names the client's original
    request even after an internal redirect (an ErrorDocument)."""
    script = params.get("SCRIPT_FILENAME", "")
    if script.startswith("proxy:"):
        return urllib.parse.urlsplit(script[len("proxy:"):]).path
    return params.get("REQUEST_URI", "")


def _cgi_response(kind: str, params: dict) -> tuple[bytes, bytes]:
    body = json.dumps({"kind": kind, "method": params.get("REQUEST_METHOD"),
                       "path": _cgi_path(params)}).encode()
    head = (f"Status: 200 OK\r\nContent-Type: application/json\r\nX-Recorder: {kind}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def _fcgi_pairs(data: bytes) -> dict:
    out, pos = {}, 0

    def length():
        nonlocal pos
        if data[pos] & 0x80:
            n = struct.unpack("!I", data[pos:pos + 4])[0] & 0x7FFFFFFF
            pos += 4
        else:
            n = data[pos]
            pos += 1
        return n
    while pos < len(data):
        nlen = length()
        vlen = length()
        name = data[pos:pos + nlen].decode("latin-1")
        pos += nlen
        out[name] = data[pos:pos + vlen].decode("latin-1")
        pos += vlen
    return out


def _fcgi_record(rtype: int, request_id: int, content: bytes) -> bytes:
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBB", 1, rtype, request_id, len(content), pad, 0) + content + b"\0" * pad


class FcgiRecorder(Recorder):
    """FastCGI responder: collects FCGI_PARAMS (the CGI variables) and FCGI_STDIN,
    answers a CGI response on FCGI_STDOUT and FCGI_END_REQUEST; serves any number
    of requests per connection (mod_proxy_fcgi sets FCGI_KEEP_CONN)."""

    kind = "fcgi"

    def handle(self, conn: _Conn) -> None:
        while conn.wait_readable():
            conn.start_message()
            params_data, stdin, request_id = b"", b"", None
            params_done = stdin_done = False
            while not (params_done and stdin_done):
                version, rtype, rid, clen, plen, _ = struct.unpack("!BBHHBB", conn.read_exact(8))
                content = conn.read_exact(clen)
                conn.read_exact(plen)
                if rtype == 1:              # FCGI_BEGIN_REQUEST
                    request_id = rid
                elif rtype == 4:            # FCGI_PARAMS
                    params_done = clen == 0
                    params_data += content
                elif rtype == 5:            # FCGI_STDIN
                    stdin_done = clen == 0
                    stdin += content
                elif rtype == 9:            # FCGI_GET_VALUES
                    conn.send(_fcgi_record(10, 0, b""))
                else:
                    raise ValueError(f"unexpected FastCGI record type {rtype}")
            params = _fcgi_pairs(params_data)
            self.record(Exchange(self.kind, params.get("REQUEST_METHOD", ""), _cgi_path(params),
                                 params=params, body=stdin, raw=conn.message_bytes()))
            head, body = _cgi_response(self.kind, params)
            conn.send(_fcgi_record(6, request_id, head + body) + _fcgi_record(6, request_id, b"")
                      + _fcgi_record(3, request_id, struct.pack("!IB3x", 0, 0)))


class ScgiRecorder(Recorder):
    """SCGI server: reads the netstring of NUL-separated variables and the body,
    answers a CGI response and closes (one request per connection)."""

    kind = "scgi"

    def handle(self, conn: _Conn) -> None:
        conn.start_message()
        length = int(conn.read_until(b":")[:-1])
        block = conn.read_exact(length)
        if conn.read_exact(1) != b",":
            raise ValueError("SCGI netstring not terminated by ','")
        items = block.split(b"\0")[:-1]
        params = {items[i].decode("latin-1"): items[i + 1].decode("latin-1")
                  for i in range(0, len(items), 2)}
        body = conn.read_exact(int(params.get("CONTENT_LENGTH") or 0))
        self.record(Exchange(self.kind, params.get("REQUEST_METHOD", ""), _cgi_path(params),
                             params=params, body=body, raw=conn.message_bytes()))
        head, body = _cgi_response(self.kind, params)
        conn.send(head + body)


class UwsgiRecorder(Recorder):
    """uWSGI server: reads the packet of variables (modifier1 0) and the body,
    answers an HTTP/1.1 response and closes (one request per connection)."""

    kind = "uwsgi"

    def handle(self, conn: _Conn) -> None:
        conn.start_message()
        modifier1, size, modifier2 = struct.unpack("<BHB", conn.read_exact(4))
        data, pos, params = conn.read_exact(size), 0, {}
        while pos < len(data):
            klen = struct.unpack("<H", data[pos:pos + 2])[0]
            key = data[pos + 2:pos + 2 + klen].decode("latin-1")
            pos += 2 + klen
            vlen = struct.unpack("<H", data[pos:pos + 2])[0]
            params[key] = data[pos + 2:pos + 2 + vlen].decode("latin-1")
            pos += 2 + vlen
        body = conn.read_exact(int(params.get("CONTENT_LENGTH") or 0))
        self.record(Exchange(self.kind, params.get("REQUEST_METHOD", ""), _cgi_path(params),
                             params=params, body=body, raw=conn.message_bytes()))
        head, out = _cgi_response(self.kind, params)
        conn.send(b"HTTP/1.1 200 OK\r\n" + head.split(b"\r\n", 1)[1] + out)


# ---------------------------------------------------------------- HTTP/2

class H2Recorder(Recorder):
    """HTTP/2 server (python3-h2): h2c with prior knowledge, or h2 over TLS when
    given tls= (ALPN "h2"). Records each stream's decoded header list; the
    decoded block is kept next to the raw frames, since HPACK may Huffman-code
    values on the wire."""

    kind = "h2"

    def __init__(self, tls: tuple | None = None, kind: str | None = None) -> None:
        super().__init__(tls, alpn=["h2"] if tls else None, kind=kind or ("h2" if tls else "h2c"))

    def handle(self, conn: _Conn) -> None:
        h2conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None))
        h2conn.initiate_connection()
        conn.send(h2conn.data_to_send())
        streams: dict = {}
        while True:
            data = conn.sock.recv(65536)
            if not data:
                return
            conn.raw += data
            for event in h2conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = [event.headers, b""]
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1] += event.data
                    h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    self._answer(h2conn, event.stream_id, *streams.pop(event.stream_id))
                elif isinstance(event, h2.events.ConnectionTerminated):
                    conn.send(h2conn.data_to_send())
                    return
            conn.send(h2conn.data_to_send())

    def _answer(self, h2conn, stream_id: int, raw_headers: list, body: bytes) -> None:
        pseudo = {k.decode(): v.decode() for k, v in raw_headers if k.startswith(b":")}
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers
                   if not k.startswith(b":")]
        decoded = b"".join(k + b": " + v + b"\r\n" for k, v in raw_headers)
        self.record(Exchange(self.kind, pseudo.get(":method", ""), pseudo.get(":path", ""),
                             headers, params=pseudo, body=body, decoded=decoded))
        out = json.dumps({"kind": self.kind, "method": pseudo.get(":method"),
                          "path": pseudo.get(":path")}).encode()
        h2conn.send_headers(stream_id, [(b":status", b"200"), (b"content-type", b"application/json"),
                                        (b"content-length", str(len(out)).encode()),
                                        (b"x-recorder", self.kind.encode())])
        h2conn.send_data(stream_id, out, end_stream=True)


# ---------------------------------------------------------------- upstream proxy

class UpstreamProxyRecorder(Recorder):
    """The next proxy in a chain (httpd's ProxyRemote). A CONNECT is recorded,
    answered "200 Connection established" and relayed to the requested
    host:port on loopback; an absolute-URI request (GET http://...) is recorded
    and answered 200 here."""

    kind = "upstream-proxy"

    def handle(self, conn: _Conn) -> None:
        conn.start_message()
        head = conn.read_until(b"\r\n\r\n")
        (method, target, *_), headers = _parse_http_head(head)
        if method != "CONNECT":     # an absolute-URI request: answered here, like HttpRecorder
            body = _read_http_body(conn, headers)
            self.record(Exchange(self.kind, method, target, headers, body=body, raw=conn.message_bytes()))
            out = json.dumps({"kind": self.kind, "method": method, "path": target}).encode()
            conn.send((f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(out)}\r\nX-Recorder: {self.kind}\r\n"
                       f"Connection: close\r\n\r\n").encode() + out)
            return
        self.record(Exchange(self.kind, method, target, headers, raw=conn.message_bytes()))
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=30)
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pending, conn.buffer = conn.buffer, b""

        def down():     # target -> client
            try:
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        break
                    conn.sock.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    socket.socket.shutdown(conn.sock, socket.SHUT_WR)
                except OSError:
                    pass
        t = threading.Thread(target=down, daemon=True)
        t.start()
        try:
            if pending:
                upstream.sendall(pending)
            while True:
                data = conn.sock.recv(65536)
                if not data:
                    break
                conn.raw += data
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
            t.join(30)
        finally:
            upstream.close()
