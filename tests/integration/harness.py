"""Real httpd, real backend, real clients: the pieces every integration test uses.

An ``Httpd`` is the distro's httpd (found through ``apxs``) started from a
generated ServerRoot on free loopback ports. A ``Backend`` is a small HTTP
server that answers every request with the request line, headers and body
size it received, as JSON, so tests can prove what was (not) forwarded.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import http.server
import json
import os
import pwd
import random
import resource
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def apxs(var: str) -> str:
    return subprocess.run(["apxs", "-q", var], check=True, capture_output=True, text=True).stdout.strip()


HTTPD_BIN = os.path.join(apxs("SBINDIR"), apxs("TARGET"))
MODULE_DIR = apxs("LIBEXECDIR")
AUTH_PROXY_MODULE = os.environ.get("AUTH_PROXY_MODULE", "")

# Lines that mean a child died or the server broke: always a test failure.
CRASH_PATTERNS = [
    r"exit signal", r"Segmentation fault", r"AH00052", r"AH00060", r"Aborted",
    r"AddressSanitizer", r"runtime error:", r"core dumped", r"AH00046",
]


def _allow_core_dumps() -> None:
    """In httpd's fork, before exec: let crashed children leave a core."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


_handed_out: set = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, so the many
    client connections a test makes cannot take it before httpd binds it."""
    low, _high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(10000, max(10001, low - 1))
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(raw: bytes) -> str:
    """The base64 token of a Basic header, for raw bytes (malformed or non-UTF-8 credentials)."""
    return base64.b64encode(raw).decode("ascii")


def basic(user: str, password: str) -> str:
    """The value of a Basic Authorization / Proxy-Authorization header."""
    return "Basic " + token(f"{user}:{password}".encode("utf-8"))


FAST_BCRYPT = ("-B", "-C", "4")   # htpasswd flags: a real bcrypt hash at the lowest cost, quick to verify


def htpasswd(path: Path, user: str, password: str, *flags: str, create: bool = False) -> None:
    """Adds or updates a user with the real htpasswd tool (-b: password on the command line)."""
    opts = "-b" + ("c" if create or not Path(path).exists() else "")
    subprocess.run(["htpasswd", opts, *flags, str(path), user, password], check=True,
                   capture_output=True)
    os.chmod(path, 0o644)


def htpasswd_delete(path: Path, user: str) -> None:
    subprocess.run(["htpasswd", "-D", str(path), user], check=True, capture_output=True)


def proxy_basic_auth(user_file, realm: str = "Login Authentication", require: str = "valid-user") -> str:
    """The directives that put a section under proxy authentication, as a user writes them."""
    return (f'    AuthType ProxyBasic\n    AuthName "{realm}"\n'
            f"    AuthUserFile {user_file}\n    Require {require}\n")


def proxied_location(path: str, backend_url: str, user_file, realm: str = "Login Authentication",
                     require: str = "valid-user") -> str:
    """A <Location> that reverse-proxies @p path to the same path of @p backend_url under ProxyBasic."""
    return (f"<Location {path}>\n    ProxyPass {backend_url}{path}\n"
            f"{proxy_basic_auth(user_file, realm, require)}</Location>\n")


def proxy_challenge(realm: str = "Login Authentication") -> str:
    """The exact Proxy-Authenticate / WWW-Authenticate value for a plain realm."""
    return f'Basic realm="{realm}", charset="UTF-8"'


def self_signed_cert(directory, name: str = "localhost") -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1/localhost made with the real openssl: (cert, key)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)   # read by the unprivileged children only in tests
    return cert, key


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> bool:
    """True once 127.0.0.1:@p port accepts a connection; False if @p proc
    exits first or @p timeout seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def terminate(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """Stops a server this test started: SIGTERM, then SIGKILL if it is not gone within @p timeout."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_user() -> str | None:
    """httpd refuses to serve as root: children run as www-data (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("www-data", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def as_server_user(script: str, *args: str, input: str | None = None) -> str:
    """Runs the Python @p script as the server's User, with the groups
    initgroups() gives it (as httpd's children have them); returns its output."""
    account = pwd.getpwnam(run_user())
    out = subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups",
                          "--", sys.executable, "-c", script, *args],
                         capture_output=True, text=True, timeout=60, input=input)
    assert out.returncode == 0, out.stderr
    return out.stdout


# Run as the User: every file below a directory that it can read, and which needles each holds.
_SCAN = r"""
import json, os, sys
needles = [n.encode() for n in json.load(sys.stdin)]
found = []
for directory, _dirs, names in os.walk(sys.argv[1]):
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        found += [[path, n.decode()] for n in needles if n in data]
print(json.dumps(found))
"""


def readable_files_holding(top, needles) -> list:
    """[path, needle] for each needle found in a file below @p top that the server's User can read."""
    if not needles:
        return []
    return json.loads(as_server_user(_SCAN, str(top), input=json.dumps(sorted(needles))))


# ---------------------------------------------------------------- docs

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DocRecipe:
    config: str     # the block with the test's values in place and its LoadModule lines taken out
    modules: list   # what those LoadModule lines load, for Httpd(extra_modules=...)


def doc_recipe(name: str, replace: dict | None = None, page: str = "docs/recipes.md") -> DocRecipe:
    """The fenced block right after ``<!-- recipe: NAME -->`` in @p page, with
    each key of @p replace (a host name, port or path the page shows) replaced
    by the test's value. A key missing from the block is an error, so that
    the page cannot change without its test noticing."""
    text = (REPO_ROOT / page).read_text()
    blocks = re.findall(rf"^<!-- recipe: {re.escape(name)} -->\n```[\w-]*\n(.*?)^```$", text, re.M | re.S)
    if len(blocks) != 1:
        raise LookupError(f"{page} has {len(blocks)} blocks marked 'recipe: {name}', not one")
    block = blocks[0]
    for old, new in (replace or {}).items():
        if old not in block:
            raise LookupError(f"recipe {name} in {page} no longer contains {old!r}")
        block = block.replace(old, new)
    load = re.compile(r"^LoadModule (\w+)_module \S+\n", re.M)
    return DocRecipe(load.sub("", block), load.findall(block))


# ---------------------------------------------------------------- backend

class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits
    # for mod_proxy's delayed ACK on a reused connection (+40 ms a request).
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": len(body),
        }
        self.server.received.append(doc)
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Backend", "echo")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _answer

    def log_message(self, *args) -> None:  # keep test output readable
        pass


class _EchoServer(http.server.ThreadingHTTPServer):
    # http.server listens with a backlog of 5; every new httpd child opens
    # connections of its own, many at once at a start or a graceful restart,
    # and SYNs past the backlog are retried 1 s, then 3 s later: stalls that
    # would be the backend's, not httpd's.
    request_queue_size = 256
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A child stopped mid-request resets its backend connection: expected
        # when a test stops httpd under load, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Backend:
    """An echo server on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.server = _EchoServer(("127.0.0.1", 0), _EchoHandler)
        self.server.received = []   # every request answered, in order (dicts like the JSON reply)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def received(self) -> list:
        """Every request this backend answered: method, path, headers, body_length."""
        return self.server.received

    def paths(self) -> list:
        return [doc["path"] for doc in self.server.received]


# ---------------------------------------------------------------- httpd

BASE_MODULES = [
    "authn_core", "authz_core", "authz_user", "authz_host", "authz_groupfile",
    "auth_basic", "proxy", "proxy_http", "mime", "dir", "alias", "headers",
    "rewrite", "env", "setenvif",
]

# What docs/recipes.md says a recipe needs besides its own LoadModule lines:
# without mod_authn_core and mod_authz_core there is no AuthType or Require
# at all, mod_authz_user gives `Require valid-user`, which every scope uses.
RECIPE_BASE_MODULES = ["authn_core", "authz_core", "authz_user", "proxy", "proxy_http"]


@dataclass
class Httpd:
    root: Path
    body: str = ""                  # config text after the generated preamble
    mpm: str = "event"
    authn_file: bool = True         # load mod_authn_file next to us (Debian's default)
    minimal: bool = False           # RECIPE_BASE_MODULES in place of BASE_MODULES, and no mod_authn_file
    extra_modules: list = field(default_factory=list)
    without_modules: list = field(default_factory=list)   # base modules to leave out
    ports: int = 1                  # how many Listen ports to allocate
    auth_proxy_module: str | None = ""   # "" loads $AUTH_PROXY_MODULE, None no mod_auth_proxy at all
    # Preamble directive -> value in place of the generated one (None leaves
    # it out), e.g. the benchmark's MPM sizing, keep-alive and log level.
    settings: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for d in ("conf", "logs", "htdocs", "run", "cores"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "cores", 0o1777)
        os.chmod(self.root, 0o755)
        self.port_list = [free_port() for _ in range(self.ports)]
        self.port = self.port_list[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.error_log = self.root / "logs" / "error_log"
        self.conf_file = self.root / "conf" / "httpd.conf"

    # -- configuration
    def modules(self) -> list[str]:
        base = RECIPE_BASE_MODULES if self.minimal else BASE_MODULES
        mods = [f"mpm_{self.mpm}"] + base + list(self.extra_modules)
        if self.authn_file and not self.minimal:
            mods.append("authn_file")
        seen, out = set(), []
        for m in mods:
            if m not in seen and m not in self.without_modules:
                seen.add(m)
                out.append(m)
        return out

    def config_text(self) -> str:
        lines = [f"ServerRoot {self.root}", "ServerName localhost"]
        lines += [f"Listen 127.0.0.1:{p}" for p in self.port_list]
        user = run_user()
        if user:
            lines += [f"User {user}", f"Group {'www-data' if user == 'www-data' else 'nogroup'}"]
        for m in self.modules():
            so = Path(MODULE_DIR) / f"mod_{m}.so"
            lines.append(f"LoadModule {m}_module {so}")
        module = AUTH_PROXY_MODULE if self.auth_proxy_module == "" else self.auth_proxy_module
        if module == "":
            raise RuntimeError("AUTH_PROXY_MODULE is not set (ctest sets it to the built module)")
        if module is not None:
            lines.append(f"LoadModule auth_proxy_module {module}")
        preamble = [
            "PidFile run/httpd.pid",
            "DefaultRuntimeDir run",
            "ErrorLog logs/error_log",
            # A crashed child leaves a core here; crashes() prints its backtrace.
            f"CoreDumpDirectory {self.root}/cores",
            "LogLevel warn auth_proxy:debug",
            'LogFormat "%h %u \\"%r\\" %>s" plain',
            "CustomLog logs/access_log plain",
            f"DocumentRoot {self.root}/htdocs",
            "TypesConfig /etc/mime.types" if "mime" in self.modules() else None,
            "KeepAliveTimeout 5",
            "Timeout 20",
        ]
        if self.mpm in ("event", "worker"):
            preamble += ["StartServers 1", "ServerLimit 2", "ThreadsPerChild 8", "MaxRequestWorkers 16"]
        else:
            preamble += ["StartServers 2", "MinSpareServers 1", "MaxSpareServers 4", "MaxRequestWorkers 8"]
        lines += self._with_settings([line for line in preamble if line is not None])
        return "\n".join(lines) + "\n\n" + self.body + "\n"

    def _with_settings(self, preamble: list[str]) -> list[str]:
        """@p preamble with each directive named in settings replaced or left
        out, and the settings it does not have yet appended."""
        out, replaced = [], set()
        for line in preamble:
            name = line.split(None, 1)[0]
            if name in self.settings:
                replaced.add(name)
                line = None if self.settings[name] is None else f"{name} {self.settings[name]}"
            if line is not None:
                out.append(line)
        out += [f"{k} {v}" for k, v in self.settings.items() if k not in replaced and v is not None]
        return out

    def write_config(self) -> None:
        self.conf_file.write_text(self.config_text())

    def env(self) -> dict:
        """httpd's environment; with AUTH_PROXY_PRELOAD (a sanitizer runtime) the
        module's ASan/UBSan build runs inside the real httpd, reports to logs/asan.*."""
        env = dict(os.environ)
        preload = os.environ.get("AUTH_PROXY_PRELOAD")
        if preload:
            env["LD_PRELOAD"] = preload
            env["ASAN_OPTIONS"] = f"detect_leaks=0:log_path={self.root}/logs/asan"
            env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={self.root}/logs/ubsan"
        return env

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([HTTPD_BIN, "-d", str(self.root), "-f", str(self.conf_file), *args],
                              capture_output=True, text=True, timeout=60, env=self.env())

    def configtest(self) -> subprocess.CompletedProcess:
        self.write_config()
        return self.command("-t")

    # -- life cycle
    def start(self) -> "Httpd":
        self.write_config()
        self.log_offset = 0
        self.proc = subprocess.Popen([HTTPD_BIN, "-d", str(self.root), "-f", str(self.conf_file),
                                      "-DFOREGROUND"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env(),
                                     # prefork's shutdown signals its whole process group
                                     # (ap_unixd_killpg(getpgrp(), SIGTERM)): keep pytest out of it.
                                     start_new_session=True, preexec_fn=_allow_core_dumps)
        if wait_for_port(self.port, self.proc):
            return self
        if self.proc.poll() is not None:
            out = self.proc.stdout.read().decode(errors="replace")
            raise RuntimeError(f"httpd exited with {self.proc.returncode}: {out}\n{self.log()}")
        raise RuntimeError(f"httpd did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def graceful(self, timeout: float = 30.0) -> None:
        """Graceful restart (SIGUSR1); returns once the new generation has
        read its configuration (every MPM's parent logs "configured --
        resuming normal operations" again) and answers."""
        ready = "configured -- resuming normal operations"
        self.write_config()
        generations = self.log().count(ready)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + timeout
        while self.log().count(ready) <= generations:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"httpd did not restart gracefully: {self.log()}")
            time.sleep(0.05)
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    # -- logs
    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mark_log(self) -> int:
        """Remember where the log ends now; log_since() reads from there."""
        self.log_offset = len(self.log())
        return self.log_offset

    def log_since(self) -> str:
        return self.log()[getattr(self, "log_offset", 0):]

    def crashes(self) -> list[str]:
        found = [line for line in self.log().splitlines()
                 if any(re.search(p, line) for p in CRASH_PATTERNS)]
        for report in sorted((self.root / "logs").glob("[au][sb]san.*")):
            found.append(f"{report.name}: " + report.read_text(errors="replace")[:4000])
        if found:
            found += self.core_backtraces()
        return found

    def core_backtraces(self) -> list[str]:
        """Backtraces of the cores crashed children left (needs gdb and a core_pattern of plain 'core')."""
        out = []
        for core in sorted((self.root / "cores").glob("core*"))[:3]:
            if shutil.which("gdb") is None:
                out.append(f"{core.name}: (install gdb for a backtrace)")
                continue
            bt = subprocess.run(["gdb", "-batch", "-ex", "thread apply all bt 30", HTTPD_BIN, str(core)],
                                capture_output=True, text=True, timeout=120).stdout
            out.append(f"{core.name}:\n{bt[-12000:]}")
        return out

    def access_log(self) -> str:
        """The access log ("%h %u \"%r\" %>s" per line)."""
        try:
            return (self.root / "logs" / "access_log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_access_log(self, pattern: str, timeout: float = 5.0) -> str:
        """The first access log line matching the regex @p pattern; httpd writes it
        after the response, so poll. Returns "" if none appeared in time."""
        return _wait_for_line(self.access_log, pattern, timeout)

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> str:
        """The first error log line since mark_log() matching the regex @p pattern,
        or "" if none appeared in time (lines written outside requests come late)."""
        return _wait_for_line(self.log_since, pattern, timeout)


def _wait_for_line(read, pattern: str, timeout: float) -> str:
    deadline = time.time() + timeout
    while True:
        for line in read().splitlines():
            if re.search(pattern, line):
                return line
        if time.time() >= deadline:
            return ""
        time.sleep(0.05)


# ---------------------------------------------------------------- clients

@dataclass
class Response:
    status: int
    headers: dict          # lower-case name -> list of values
    body: bytes
    status_line: str = ""  # e.g. "HTTP/2 407", "HTTP/1.1 200 OK"

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def json(self):
        return json.loads(self.body)

    def backend_headers(self) -> dict:
        """Headers the echo backend received (lower-case name -> list of values)."""
        out: dict = {}
        for k, v in self.json()["headers"]:
            out.setdefault(k.lower(), []).append(v)
        return out


def client_env() -> dict:
    """The environment for a client process: no proxy variables from the machine leak in."""
    return {k: v for k, v in os.environ.items()
            if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}


class RawHttp:
    """One hand-driven client connection, for what curl will not do on request
    (hold a body back after Expect: 100-continue, reuse a connection after a 407)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _take_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed mid-response: {self.buffer!r}")
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ConnectionError("connection closed mid-body")
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def read_response(self, head: bool = False) -> Response:
        """Reads one response (interim 1xx responses are returned like any other)."""
        status_line = self._take_line()
        status = int(status_line.split()[1])
        headers: dict = {}
        while True:
            line = self._take_line()
            if not line:
                break
            k, v = line.split(b":", 1)
            headers.setdefault(k.decode().strip().lower(), []).append(v.decode(errors="replace").strip())
        body = b""
        if head or status < 200 or status in (204, 304):
            pass
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"][-1]))
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            while True:
                size = int(self._take_line().split(b";")[0], 16)
                if size == 0:
                    while self._take_line():
                        pass
                    break
                body += self._take(size)
                self._take_line()
        else:
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
        return Response(status, headers, body, status_line.decode(errors="replace"))

    def closed_by_peer(self, wait: float = 2.0) -> bool:
        """True if the server closed the connection (reads EOF) within @p wait seconds."""
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawHttp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def curl(*args: str, timeout: float = 30) -> Response:
    """Runs the real curl; returns the last response's status, headers and body."""
    return _curl_run(args, timeout)


def _curl_run(args, timeout) -> Response:
    with tempfile.NamedTemporaryFile() as body_file:
        proc = subprocess.run(["curl", "-s", "-S", "--max-time", str(int(timeout)), "-D", "-",
                               "-o", body_file.name, *args],
                              capture_output=True, timeout=timeout + 5, env=client_env())
        body = Path(body_file.name).read_bytes()
    if proc.returncode != 0 and not proc.stdout:
        raise RuntimeError(f"curl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    # -D - prints every response's header block (100-continue, CONNECT 200, ...): keep the last.
    blocks = [b for b in re.split(rb"\r\n\r\n", proc.stdout) if b.startswith(b"HTTP/")]
    if not blocks:
        raise RuntimeError(f"curl {' '.join(args)}: no response: {proc.stderr.decode(errors='replace')}")
    lines = blocks[-1].split(b"\r\n")
    status = int(lines[0].split()[1])
    headers: dict = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers.setdefault(k.decode().strip().lower(), []).append(v.decode(errors="replace").strip())
    return Response(status, headers, body, lines[0].decode(errors="replace").strip())


def assert_challenged(r: Response, realm: str = "Login Authentication", local: bool = False) -> None:
    """A fresh challenge for @p realm and nothing from the backend: for a
    proxied request 407 with exactly one Proxy-Authenticate and no
    WWW-Authenticate; for a @p local one (served by httpd itself) 401 with
    exactly one WWW-Authenticate and no Proxy-Authenticate."""
    status, asked, other = ((401, "www-authenticate", "proxy-authenticate") if local
                            else (407, "proxy-authenticate", "www-authenticate"))
    assert r.status == status
    assert r.headers.get(asked) == [proxy_challenge(realm)]
    assert r.headers.get(other) is None
    assert r.header("X-Backend") is None, "the backend must not have been asked"


def get(h, path: str, credentials: str | None = None, *args: str, header: str = "Proxy-Authorization",
        timeout: float = 30) -> Response:
    """curl GET of @p path on @p h, with @p credentials (a header value such as
    basic(...)) in @p header when given, and any further curl @p args."""
    sent = ["-H", f"{header}: {credentials}"] if credentials else []
    return curl(*sent, *args, f"{h.url}{path}", timeout=timeout)


def curl_verbose(*args: str) -> subprocess.CompletedProcess:
    """curl -v, for what only its trace shows (every status, a reused
    connection, the tunnel): the finished process, stdout and stderr as text."""
    return subprocess.run(["curl", "-s", "-S", "-v", "--max-time", "20", *args],
                          capture_output=True, text=True, timeout=30, env=client_env())


def fresh_request(h, user: str, password: str, path: str = "/p/x", headers: dict | None = None,
                  timeout: float = 30) -> http.client.HTTPResponse:
    """One request with proxy credentials on a connection of its own (so
    prefork spreads them over its children); the response, body read."""
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Proxy-Authorization": basic(user, password),
                                           "Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        resp.read()
        return resp
    finally:
        conn.close()


def proxy_status(h, user: str, password: str, path: str = "/p/x", headers: dict | None = None,
                 timeout: float = 30) -> int:
    """The status of fresh_request()."""
    return fresh_request(h, user, password, path, headers, timeout).status


def ws_exchange(url: str, headers: dict | None = None) -> Response:
    """A WebSocket handshake (python3-websockets) and one message: 101 and the
    reply, or a refused handshake's status and headers."""
    import websockets   # only the WebSocket tests need python3-websockets

    def header_lists(received) -> dict:
        out: dict = {}
        for k, v in received.raw_items():
            out.setdefault(k.lower(), []).append(v)
        return out

    async def run() -> Response:
        try:
            async with websockets.connect(url, extra_headers=headers or {}, open_timeout=10) as ws:
                await ws.send("hello")
                reply = await asyncio.wait_for(ws.recv(), 10)
                return Response(101, header_lists(ws.response_headers), reply.encode())
        except websockets.exceptions.InvalidStatusCode as refused:
            return Response(refused.status_code, header_lists(refused.headers), b"")
    return asyncio.run(run())
