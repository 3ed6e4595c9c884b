#!/usr/bin/python3
"""Side-by-side benchmark: mod_auth_proxy vs stock httpd authentication vs Squid.

Run through bench/run (which installs packages and builds the module first).
Everything runs on this machine on loopback ports: a static backend (a second
httpd serving a small file), the httpd under test (event MPM, 2 processes x 25
threads, LogLevel warn, no access log) or Squid, and wrk as the client with 8
keep-alive connections. Progress goes to stderr; the Markdown report goes to
stdout and to bench/results/latest.md (or --out).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import http.client
import os
import platform
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "alice", "bench-secret"          # the authenticated user, last in every file
COLD_PASSWORD = "cold-secret"
FILLER_PASSWORD = "filler-password"                # every filler user's password (one shared hash)
STATIC = "static.txt"                              # the backend's small static file
STATIC_BODY = ("mod_auth_proxy benchmark payload " * 8).encode()[:256]

FORMATS = {  # key: (label, htpasswd flags)
    "sha": ("{SHA}", ["-s"]),
    "apr1": ("APR1-MD5", ["-m"]),
    "bcrypt10": ("bcrypt cost 10", ["-B", "-C", "10"]),
    "bcrypt12": ("bcrypt cost 12", ["-B", "-C", "12"]),
    "sha512": ("SHA-512 crypt", ["-5"]),
}
SIZES = [1000, 100000, 1000000]
SERVERS = {
    "proxy": "mod_auth_proxy",
    "stock": "stock mod_auth_basic + mod_authn_file",
    "socache": "stock + mod_authn_socache",
    "squid": "Squid basic_ncsa_auth",
}
# Reference rows of the throughput table that are not a --servers choice:
# mod_auth_proxy with its guessing throttle off (the "proxy" rows run it on, its default).
THROTTLE_OFF = "proxy-throttle-off"
LABELS = {**SERVERS, THROTTLE_OFF: "mod_auth_proxy, throttle off"}
AUTH_PROXY_KINDS = ("proxy", THROTTLE_OFF, "proxy-ldap")
MODES = ["reverse", "forward"]
SECTIONS = ["throughput", "latency", "micro", "ldap", "cold", "reload", "memory"]
LATENCY_USERS = 1000
LATENCY_CASES = [  # key, row label of the latency table
    ("unknown", "unknown user (a new name each request)"),
    ("wrong", "wrong password (a new one each request)"),
    ("uncached", "right password, uncached (each user's first request)"),
    ("cached", "right password, cached"),
]
# mod_auth_proxy's debug line for each hash verification: dummy, mismatch, match.
VERIFY_LINE = re.compile(r"(APX01014|APX01015|APX01010): user ([^\s:]+)")
NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def apxs(var: str) -> str:
    return subprocess.run(["apxs", "-q", var], check=True, capture_output=True, text=True).stdout.strip()


HTTPD_BIN = os.path.join(apxs("SBINDIR"), apxs("TARGET"))
MODULE_DIR = apxs("LIBEXECDIR")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def run_user() -> tuple[str, str] | None:
    """httpd refuses to serve as root: its children run as www-data."""
    if os.geteuid() != 0:
        return None
    for name, group in (("www-data", "www-data"), ("nobody", "nogroup")):
        try:
            pwd.getpwnam(name)
            return name, group
        except KeyError:
            continue
    return None


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of whole processes (all threads, dead ones included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(sum of Rss, sum of Pss) in kB from smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            if name == "Rss":
                rss += int(rest.split()[0])
            elif name == "Pss":
                pss += int(rest.split()[0])
    return rss, pss


def index_cache_kb(root: Path) -> int:
    """Bytes (kB) of the server's index files held in the page cache (fincore):
    the one shared copy, counted once, whether or not a process has touched it."""
    files = sorted(str(p) for p in (root / "run" / "auth_proxy").glob("*.idx"))
    if not files or shutil.which("fincore") is None:
        return 0
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *files],
                         capture_output=True, text=True).stdout
    return sum(int(v) for v in out.split() if v.isdigit()) // 1024


# mod_auth_proxy's refusals: malformed, unknown user, unusable entry,
# mismatch, locked out, repeated failure.
REFUSAL_LINE = re.compile(r"APX0100[3567]|APX0101[23]")

LOAD_LINE = re.compile(r"\[pid (\d+)(?::tid \d+)?\].*?APX02003: (loaded|reloaded) .*?: (\d+) users in (\d+) ms"
                       r"( \(mapped shared index)?")


def load_events(log: str) -> list[dict]:
    """mod_auth_proxy's "(re)loaded FILE: N users in X ms" lines, with the
    process that logged them and whether it built the index or mapped the
    shared one another process built."""
    return [{"pid": int(m.group(1)), "reload": m.group(2) == "reloaded", "users": int(m.group(3)),
             "ms": int(m.group(4)), "mapped": bool(m.group(5))} for m in LOAD_LINE.finditer(log)]


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------- user files

class UserFiles:
    """htpasswd files, generated fast: one real htpasswd line for the user we
    authenticate as (last in the file), filler users sharing one precomputed
    hash (their hashes are never verified, only scanned or indexed)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lines: dict[tuple[str, str, str], str] = {}

    def hash_line(self, fmt: str, user: str, password: str) -> str:
        key = (fmt, user, password)
        if key not in self.lines:
            flags = FORMATS[fmt][1]
            out = subprocess.run(["htpasswd", "-nb", *flags, user, password], check=True,
                                 capture_output=True, text=True).stdout
            self.lines[key] = out.splitlines()[0].strip()
        return self.lines[key]

    def path(self, fmt: str, users: int) -> Path:
        p = self.dir / f"{fmt}-{users}.htpasswd"
        if p.exists():
            return p
        started = time.time()
        real = self.hash_line(fmt, USER, PASSWORD)
        filler = self.hash_line(fmt, "filler", FILLER_PASSWORD).split(":", 1)[1]
        tmp = p.with_suffix(".tmp")
        with open(tmp, "w") as f:
            chunk = 100000
            for start in range(0, users - 1, chunk):
                end = min(users - 1, start + chunk)
                f.write("".join([f"{self.filler(i)}:{filler}\n" for i in range(start, end)]))
            f.write(real + "\n")
        os.chmod(tmp, 0o644)
        tmp.rename(p)
        progress(f"generated {p.name}: {users} users, {p.stat().st_size / 1e6:.1f} MB "
                 f"in {time.time() - started:.1f} s")
        return p

    @staticmethod
    def filler(i: int) -> str:
        """The name of filler user i (line i + 1 of every file; its password is FILLER_PASSWORD)."""
        return f"u{i:07d}"

    def cold(self, users: int) -> tuple[Path, list[str]]:
        """`users` distinct users with real bcrypt cost-10 entries (one shared hash string:
        every user still costs its own verification, the cache key includes the user)."""
        p = self.dir / f"cold-{users}.htpasswd"
        names = [f"c{i:05d}" for i in range(users)]
        if not p.exists():
            h = self.hash_line("bcrypt10", "cold", COLD_PASSWORD).split(":", 1)[1]
            p.write_text("".join(f"{n}:{h}\n" for n in names))
            os.chmod(p, 0o644)
        return p, names


# --------------------------------------------------------------------- servers

class Httpd:
    """One httpd instance from a generated ServerRoot."""
    counter = 0

    def __init__(self, work: Path, name: str, modules: list[str], body: str, *, mpm: str = "event",
                 ports: int = 1, loglevel: str = "warn", auth_proxy: str | None = None,
                 threads: int = 25) -> None:
        Httpd.counter += 1
        self.root = work / f"{name}-{Httpd.counter}"
        for d in ("conf", "logs", "htdocs", "run"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.ports = [free_port() for _ in range(ports)]
        self.port = self.ports[0]
        self.error_log = self.root / "logs" / "error_log"
        self.conf = self.root / "conf" / "httpd.conf"
        self.proc: subprocess.Popen | None = None
        lines = [f"ServerRoot {self.root}", "ServerName localhost"]
        lines += [f"Listen 127.0.0.1:{p}" for p in self.ports]
        ru = run_user()
        if ru:
            lines += [f"User {ru[0]}", f"Group {ru[1]}"]
        for m in [f"mpm_{mpm}"] + modules:
            lines.append(f"LoadModule {m}_module {MODULE_DIR}/mod_{m}.so")
        if auth_proxy:
            lines.append(f"LoadModule auth_proxy_module {auth_proxy}")
        lines += [
            "PidFile run/httpd.pid", "DefaultRuntimeDir run", "ErrorLog logs/error_log",
            f"LogLevel {loglevel}", f"DocumentRoot {self.root}/htdocs",
            "KeepAlive On", "MaxKeepAliveRequests 0", "KeepAliveTimeout 60", "Timeout 60",
        ]
        self.children = 4 if mpm == "prefork" else 2
        if mpm == "prefork":
            lines += ["StartServers 4", "MinSpareServers 2", "MaxSpareServers 6",
                      "ServerLimit 8", "MaxRequestWorkers 8"]
        else:
            lines += ["StartServers 2", "ServerLimit 2", f"ThreadsPerChild {threads}",
                      f"ThreadLimit {threads}", f"MaxRequestWorkers {2 * threads}",
                      f"MinSpareThreads {threads}", f"MaxSpareThreads {2 * threads}"]
        self.text = "\n".join(lines) + "\n\n" + body + "\n"

    def start(self) -> "Httpd":
        self.conf.write_text(self.text)
        # Own session: prefork's parent signals its whole process group on the
        # way down, which would otherwise include this script.
        self.proc = subprocess.Popen([HTTPD_BIN, "-d", str(self.root), "-f", str(self.conf), "-DFOREGROUND"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(self.port, self.proc, "httpd")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log()[-3000:]}") from None
        # The parent listens before it forks: wait for the children too, so
        # that pids() sees every process that will serve.
        deadline = time.time() + 10
        while len(children_of(self.proc.pid)) < self.children and time.time() < deadline:
            time.sleep(0.02)
        return self

    def pids(self) -> list[int]:
        if not self.proc:
            return []
        return [self.proc.pid] + children_of(self.proc.pid)

    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def start_backend(work: Path) -> Httpd:
    """A second httpd serving one small static file on two ports (reverse, forward)."""
    b = Httpd(work, "backend", ["authz_core"], '<Location "/">\n  Require all granted\n</Location>',
              ports=2, threads=32)
    (b.root / "htdocs" / STATIC).write_bytes(STATIC_BODY)
    return b


AUTH_BLOCKS = {
    "noauth": "Require all granted",
    "proxy": 'AuthType ProxyBasic\nAuthName "bench"\nAuthUserFile {file}\nRequire valid-user',
    "stock": 'AuthType Basic\nAuthName "bench"\nAuthBasicProvider file\nAuthUserFile {file}\nRequire valid-user',
    "socache": ('AuthType Basic\nAuthName "bench"\nAuthBasicProvider socache file\n'
                'AuthnCacheProvideFor file\nAuthUserFile {file}\nRequire valid-user'),
    # LDAP (section "ldap"); {file} is the AuthLDAPURL there.
    "proxy-ldap": 'AuthType ProxyBasic\nAuthName "bench"\nAuthProxyProvider ldap\nAuthLDAPURL "{file}"\nRequire valid-user',
    "stock-ldap": 'AuthType Basic\nAuthName "bench"\nAuthBasicProvider ldap\nAuthLDAPURL "{file}"\nRequire valid-user',
    # Authentication without a password check: what httpd's authn/authz
    # machinery (mod_auth_basic, Require valid-user) costs by itself.
    "floor": (f'AuthType Basic\nAuthName "bench"\nAuthBasicProvider anon\nAnonymous {USER}\n'
              'Anonymous_MustGiveEmail Off\nAnonymous_VerifyEmail Off\nAnonymous_LogEmail Off\nRequire valid-user'),
}


def front(work: Path, kind: str, backend: Httpd, module: str, user_file: Path | None = None, *,
          mpm: str = "event", loglevel: str = "warn", global_extra: str = "") -> Httpd:
    """The httpd under test. /r/ reverse-proxies to the backend's first port;
    forward-proxy requests for the backend's second port are authenticated in
    <Proxy>, so the two modes never share a section."""
    modules = ["authn_core", "authz_core", "authz_user", "auth_basic", "authn_file", "proxy", "proxy_http"]
    if kind == "floor":
        modules += ["authn_anon"]
    if kind == "socache":
        modules += ["socache_shmcb", "authn_socache"]
        global_extra += "\nAuthnCacheSOCache shmcb"
    if kind.endswith("-ldap"):
        modules += ["ldap", "authnz_ldap"]
        # mod_ldap's own caches, at their defaults made explicit.
        global_extra += "\nLDAPCacheEntries 1024\nLDAPCacheTTL 600\nLDAPOpCacheEntries 1024\nLDAPOpCacheTTL 600"
    auth = AUTH_BLOCKS[kind].format(file=user_file)
    b1, b2 = backend.ports
    body = f"""{global_extra}
<Location "/r/">
  ProxyPass "http://127.0.0.1:{b1}/"
{indent(auth)}
</Location>
ProxyRequests On
<Proxy "http://127.0.0.1:{b2}/*">
{indent(auth)}
</Proxy>
"""
    return Httpd(work, f"front-{kind}", modules, body, mpm=mpm, loglevel=loglevel,
                 auth_proxy=module if kind in ("proxy", "noauth", "proxy-ldap") else None)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


class Squid:
    """One Squid instance: an accelerator port (reverse, cache_peer to the
    backend) and a forward-proxy port; no disk cache, nothing cached."""
    counter = 0

    def __init__(self, work: Path, backend: Httpd, user_file: Path | None, auth_program: str | None = None) -> None:
        Squid.counter += 1
        self.dir = work / f"squid-{Squid.counter}"
        self.dir.mkdir(parents=True)
        self.accel_port, self.forward_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        b1, _ = backend.ports
        auth = ""
        access = "http_access allow all"
        if user_file is not None or auth_program is not None:
            program = auth_program or f"{NCSA_AUTH} {user_file}"
            auth = f"""auth_param basic program {program}
auth_param basic children 5 startup=5 idle=1
auth_param basic realm bench
auth_param basic credentialsttl 2 hours
authenticate_ttl 2 hours
acl authed proxy_auth REQUIRED
"""
            access = "http_access allow authed\nhttp_access deny all"
        self.text = f"""http_port 127.0.0.1:{self.accel_port} accel defaultsite=127.0.0.1:{b1} no-vhost name=accel
http_port 127.0.0.1:{self.forward_port} name=forward
acl accel_port myportname accel
cache_peer 127.0.0.1 parent {b1} 0 no-query no-digest originserver name=backend
cache_peer_access backend allow accel_port
cache_peer_access backend deny all
never_direct allow accel_port
{auth}{access}
cache deny all
cache_mem 16 MB
access_log none
cache_store_log none
cache_log {self.dir}/cache.log
pid_filename {self.dir}/squid.pid
coredump_dir {self.dir}
netdb_filename none
pinger_enable off
visible_hostname bench.invalid
shutdown_lifetime 1 seconds
"""
        if os.geteuid() == 0:
            self.text += "cache_effective_user proxy\n"
            shutil.chown(self.dir, "proxy", "proxy")

    def start(self) -> "Squid":
        conf = self.dir / "squid.conf"
        conf.write_text(self.text)
        self.proc = subprocess.Popen(["squid", "-N", "-f", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr.log", "wb"), start_new_session=True)
        try:
            wait_port(self.accel_port, self.proc, "squid")
            wait_port(self.forward_port, self.proc, "squid")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log()[-3000:]}") from None
        return self

    def log(self) -> str:
        out = ""
        for name in ("stderr.log", "cache.log"):
            try:
                out += (self.dir / name).read_text(errors="replace")
            except FileNotFoundError:
                pass
        return out

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
        self.proc = None


# --------------------------------------------------------------------- clients

@dataclass
class Target:
    """Where wrk sends requests: a server port, the request path (absolute URI
    for forward proxying) and the credentials header, if any."""
    port: int
    path: str
    header: str | None = None       # "Proxy-Authorization" or "Authorization"
    credentials: str | None = None  # "Basic ..."

    def headers(self) -> dict:
        return {self.header: self.credentials} if self.header else {}


def request_once(t: Target, timeout: float = 120) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=timeout)
    try:
        conn.request("GET", t.path, headers=t.headers())
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


DONE_LUA = r"""
function done(summary, latency, requests)
  local over = 0
  for i = 1, #latency do
    local v, c = latency(i)
    if v > 50000 then over = over + c end
  end
  io.write(string.format("BENCH requests=%d max_us=%d p99_us=%d over50=%d status_errors=%d\n",
    summary.requests, latency.max, latency:percentile(99), over, summary.errors.status))
end
"""


@dataclass
class WrkResult:
    rps: float
    requests: int
    max_ms: float
    p99_ms: float
    over50: int
    bad: int            # non-2xx responses, socket errors and timeouts
    raw: str = ""


class Wrk:
    def __init__(self, work: Path, connections: int = 8, threads: int = 2) -> None:
        self.dir = work / "wrk"
        self.dir.mkdir(exist_ok=True)
        self.connections, self.threads = connections, threads
        self.n = 0

    def script(self, path: str, rotate: list[tuple[str, str]] | None = None) -> Path:
        """A Lua script: the request path (absolute URI for forward proxying),
        optionally a list of (header, value) pairs cycled per request, and the
        done() report (max latency, requests over 50 ms)."""
        self.n += 1
        lua = f'wrk.path = "{path}"\n'
        if rotate:
            lua += "local creds = {\n" + "".join(f'  {{"{h}", "{v}"}},\n' for h, v in rotate) + "}\n"
            lua += r"""
local reqs = {}
local next_i = 1
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("offset", counter)
end
function init(args)
  for i, c in ipairs(creds) do
    local h = {}
    h[c[1]] = c[2]
    reqs[i] = wrk.format(nil, nil, h)
  end
  -- threads start at different users so they do not move in lockstep
  next_i = ((offset or 1) - 1) * math.floor(#reqs / 2) + 1
end
function request()
  local r = reqs[next_i]
  next_i = next_i + 1
  if next_i > #reqs then next_i = 1 end
  return r
end
"""
        lua += DONE_LUA
        p = self.dir / f"s{self.n}.lua"
        p.write_text(lua)
        return p

    def start(self, t: Target, seconds: float, rotate: list[tuple[str, str]] | None = None) -> subprocess.Popen:
        script = self.script(t.path, rotate)
        cmd = ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "20s", "-s", str(script)]
        if t.header and not rotate:
            cmd += ["-H", f"{t.header}: {t.credentials}"]
        cmd.append(f"http://127.0.0.1:{t.port}/")
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @staticmethod
    def result(proc: subprocess.Popen) -> WrkResult:
        out, _ = proc.communicate()
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        b = re.search(r"BENCH requests=(\d+) max_us=(\d+) p99_us=(\d+) over50=(\d+) status_errors=(\d+)", out)
        if proc.returncode != 0 or not m or not b:
            raise RuntimeError(f"wrk failed: {out}")
        bad = 0
        n2 = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        if n2:
            bad += int(n2.group(1))
        se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if se:
            bad += sum(int(x) for x in se.groups())
        return WrkResult(float(m.group(1)), int(b.group(1)), int(b.group(2)) / 1000, int(b.group(3)) / 1000,
                         int(b.group(4)), bad, out)

    def run(self, t: Target, seconds: float, rotate=None) -> WrkResult:
        return self.result(self.start(t, seconds, rotate))

    def measure(self, t: Target, seconds: float, warmup: float, rotate=None) -> WrkResult:
        if warmup > 0:
            self.run(t, warmup, rotate)
        r = self.run(t, seconds, rotate)
        if r.bad:
            progress(f"  WARNING: {r.bad} failed requests (non-2xx or socket errors) in this row")
        return r


# --------------------------------------------------------------------- verification counter

class VerifyCounter:
    """Counts calls of apr_password_validate (every hash verification of
    mod_auth_proxy and of stock httpd) in given processes with a perf uprobe."""

    def __init__(self, module: str) -> None:
        self.event = None
        self.lib = None
        try:
            ldd = subprocess.run(["ldd", module], capture_output=True, text=True, check=True).stdout
            m = re.search(r"libaprutil-1\.so\.0 => (\S+)", ldd)
            if not m or not shutil.which("perf"):
                return
            self.lib = m.group(1)
            r = subprocess.run(["perf", "probe", "-q", "-x", self.lib, "apr_password_validate"],
                               capture_output=True, text=True)
            listing = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
            m = re.search(r"(probe_libaprutil:apr_password_validate)\S*", listing)
            if m:
                self.event = m.group(1)
                self.created = r.returncode == 0
        except (OSError, subprocess.CalledProcessError):
            self.event = None

    def start(self, pids: list[int]) -> subprocess.Popen | None:
        if not self.event:
            return None
        p = subprocess.Popen(["perf", "stat", "-x", ",", "-e", self.event, "-p", ",".join(map(str, pids))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # let perf attach
        return p

    @staticmethod
    def finish(p: subprocess.Popen | None) -> int | None:
        if p is None:
            return None
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        for line in err.splitlines():
            first = line.split(",")[0]
            if first.isdigit():
                return int(first)
        return None

    def close(self) -> None:
        if self.event and getattr(self, "created", False):
            subprocess.run(["perf", "probe", "-q", "-d", self.event], capture_output=True)


# --------------------------------------------------------------------- the benchmark

def fmt_ratio(x: float) -> str:
    return f"{x:.2f}" if x >= 0.095 else f"{x:.1g}"


def fmt_rps(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_ms(x: float) -> str:
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms" if x < 100 else f"{x:,.0f} ms"


def fmt_times(x: float) -> str:
    return f"{x:,.0f}×" if x >= 10 else f"{x:.2f}×"


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    module: str
    files: UserFiles = None
    backend: Httpd = None
    wrk: Wrk = None
    live: list = field(default_factory=list)        # servers to stop on the way out
    rows: dict = field(default_factory=dict)        # (mode, server, fmt, users) -> WrkResult | str
    baselines: dict = field(default_factory=dict)   # ("httpd"|"squid", mode) -> [(block, rps)]
    notes: list = field(default_factory=list)
    squid_reverse_header: str | None = None
    squid_reverse_status: int | None = None
    sections_md: list = field(default_factory=list)
    module_desc: str = ""
    floor: dict = field(default_factory=dict)        # mode -> (WrkResult, paired no-auth rps)

    # -- servers
    def launch(self, server):
        self.live.append(server)
        server.start()
        return server

    def retire(self, server) -> None:
        server.stop()
        if server in self.live:
            self.live.remove(server)

    def server_for(self, kind: str, user_file: Path):
        """A (not yet started) authenticating server of a throughput row."""
        if kind == "squid":
            return Squid(self.work, self.backend, user_file)
        if kind == THROTTLE_OFF:
            return front(self.work, "proxy", self.backend, self.module, user_file,
                         global_extra="AuthProxyThrottle Off")
        return front(self.work, kind, self.backend, self.module, user_file)

    def targets(self, server, kind: str, creds: str | None) -> dict:
        """Reverse and forward Target for a started server of the given kind."""
        b1, b2 = self.backend.ports
        fwd_path = f"http://127.0.0.1:{b2}/{STATIC}"
        if kind == "squid":
            rev = Target(server.accel_port, f"/{STATIC}")
            fwd = Target(server.forward_port, fwd_path)
            if creds:
                rev.header, rev.credentials = self.squid_reverse_header or "Authorization", creds
                fwd.header, fwd.credentials = "Proxy-Authorization", creds
        else:
            rev = Target(server.port, f"/r/{STATIC}")
            fwd = Target(server.port, fwd_path)
            if creds:
                rev.header = "Proxy-Authorization" if kind in AUTH_PROXY_KINDS else "Authorization"  # stock: 401
                fwd.header = "Proxy-Authorization"
                rev.credentials = fwd.credentials = creds
        return {"reverse": rev, "forward": fwd}

    def check(self, t: Target, what: str) -> float:
        """One request that must succeed; returns how long it took."""
        started = time.time()
        status, _ = request_once(t)
        if status != 200:
            raise RuntimeError(f"{what}: expected 200, got {status}")
        return time.time() - started

    # -- throughput
    def start_noauth(self) -> None:
        """No-auth httpd (and Squid) stay up through the whole throughput section."""
        self.noauth = {"httpd": self.launch(front(self.work, "noauth", self.backend, self.module))}
        if "squid" in self.args.servers:
            self.noauth["squid"] = self.launch(Squid(self.work, self.backend, None))
        self.noauth_targets = {k: self.targets(v, "squid" if k == "squid" else "noauth", None)
                               for k, v in self.noauth.items()}
        for k, ts in self.noauth_targets.items():
            for mode in self.args.modes:
                self.check(ts[mode], f"{k} no-auth {mode}")

    def measure_baselines(self, block: int) -> None:
        a = self.args
        for kind, ts in self.noauth_targets.items():
            for mode in a.modes:
                r = self.wrk.measure(ts[mode], a.duration, a.warmup)
                self.baselines.setdefault((kind, mode), []).append((block, r.rps))
                progress(f"no-auth {kind:5} {mode:7}: {r.rps:,.0f} req/s")

    def paired(self, t: Target, base: Target) -> tuple[WrkResult, float]:
        """Alternates 1-second slices of the row and of the no-auth httpd
        (A B A B ...), so that load from anything else on the machine hits both
        alike; the ratio is the median of the slice pairs' ratios."""
        a = self.args
        if a.warmup > 0:
            self.wrk.run(t, a.warmup)
        mine, ratios = [], []
        for _ in range(max(2, round(a.duration))):
            x = self.wrk.run(t, 1)
            y = self.wrk.run(base, 1)
            mine.append(x)
            ratios.append(x.rps / y.rps if y.rps else 0.0)
        r = mine[0]
        r.rps = statistics.median(x.rps for x in mine)
        r.requests = sum(x.requests for x in mine)
        r.bad = sum(x.bad for x in mine)
        r.max_ms = max(x.max_ms for x in mine)
        if r.bad:
            progress(f"  WARNING: {r.bad} failed requests (non-2xx or socket errors) in this row")
        ratio = statistics.median(ratios)
        return r, r.rps / ratio if ratio else 0.0

    def measure_row(self, t: Target, latency: float) -> WrkResult:
        """A slow row (one request alone takes > 50 ms: the hash or the file
        scan dominates) gets no warm-up, whose unfinished requests would eat
        into the measurement, and a longer run, so that every connection
        completes a few requests."""
        a = self.args
        if latency <= 0.05:
            return self.wrk.measure(t, a.duration, a.warmup)
        return self.wrk.measure(t, max(a.duration, min(20, round(8 * latency))), 0)

    def probe_squid_reverse(self, user_file: Path) -> None:
        """What Squid does for authentication in accelerator mode."""
        sq = self.launch(Squid(self.work, self.backend, user_file))
        try:
            t = self.targets(sq, "squid", None)["reverse"]
            status, headers = request_once(t)
            self.squid_reverse_status = status
            if "www-authenticate" in headers:
                self.squid_reverse_header = "Authorization"
            elif "proxy-authenticate" in headers:
                self.squid_reverse_header = "Proxy-Authorization"
            challenge = headers.get("www-authenticate") or headers.get("proxy-authenticate")
            note = (f"Squid as accelerator (`http_port ... accel`) answers an unauthenticated request with "
                    f"**{status}** and `{'WWW-Authenticate' if 'www-authenticate' in headers else 'Proxy-Authenticate'}: "
                    f"{challenge}`, and reads `{self.squid_reverse_header}`")
            # Does it also accept the other header?
            other = "Proxy-Authorization" if self.squid_reverse_header == "Authorization" else "Authorization"
            s2, _ = request_once(Target(t.port, t.path, other, basic(USER, PASSWORD)))
            note += f"; credentials sent in `{other}` instead get {s2}."
            self.notes.append(note)
            progress(note)
        finally:
            self.retire(sq)

    def throughput(self) -> None:
        a = self.args
        progress("== throughput (warm cache, one user, last in the file)")
        self.start_noauth()
        self.measure_baselines(0)
        creds = basic(USER, PASSWORD)
        if "proxy" in a.servers:
            server = self.launch(front(self.work, "floor", self.backend, self.module))
            try:
                ts = self.targets(server, "floor", creds)
                for mode in a.modes:
                    self.check(ts[mode], f"floor {mode}")
                    r, paired = self.paired(ts[mode], self.noauth_targets["httpd"][mode])
                    self.floor[mode] = (r, paired)
                    progress(f"{mode:7} floor (mod_authn_anon): {r.rps:,.1f} req/s (paired no-auth {paired:,.0f})")
            finally:
                self.retire(server)
        for block, users in enumerate(a.sizes, start=1):
            for fmt, kinds in self.throughput_rows():
                path = self.files.path(fmt, users)
                if "squid" in kinds and self.squid_reverse_header is None:
                    self.probe_squid_reverse(path)
                for kind in kinds:
                    if kind == "squid" and fmt == "sha":
                        # basic_ncsa_auth has no {SHA} support: prove it rather than assume.
                        self.squid_sha_check(path)
                        continue
                    server = self.launch(self.server_for(kind, path))
                    try:
                        ts = self.targets(server, kind, creds)
                        for mode in a.modes:
                            key = (mode, kind, fmt, users)
                            try:
                                latency = self.check(ts[mode], f"{kind} {fmt} {users} {mode}")
                                if kind in AUTH_PROXY_KINDS:
                                    r, paired = self.paired(ts[mode], self.noauth_targets["httpd"][mode])
                                else:
                                    r, paired = self.measure_row(ts[mode], latency), None
                                self.rows[key] = (block, r, paired)
                                progress(f"{mode:7} {kind:7} {fmt:8} {users:>8} users: {r.rps:,.1f} req/s"
                                         + (f" (paired no-auth {paired:,.0f})" if paired else "")
                                         + (f" ({r.bad} failed)" if r.bad else ""))
                            except Exception as e:  # keep going: one broken row must not lose the run
                                self.rows[key] = (block, f"error: {e}".splitlines()[0][:80], None)
                                progress(f"{mode} {kind} {fmt} {users}: {e}")
                        if kind in AUTH_PROXY_KINDS:
                            self.check_no_refusals(server, f"{LABELS[kind]}, {FORMATS[fmt][0]}, {users:,} users")
                    finally:
                        self.retire(server)
            self.measure_baselines(block)
        for server in self.noauth.values():
            self.retire(server)

    def table_rows(self) -> list[tuple[str, list[str]]]:
        """(server kind, formats) in the order of the throughput table: the
        throttle-off reference row right after mod_auth_proxy's."""
        a = self.args
        rows = []
        for kind in a.servers:
            rows.append((kind, a.formats))
            if kind == "proxy" and a.throttle_off:
                rows.append((THROTTLE_OFF, a.throttle_off))
        return rows

    def throughput_rows(self) -> list[tuple[str, list[str]]]:
        """(format, server kinds) in the order the throughput section runs
        them: every --servers kind for every --formats format, and the
        throttle-off reference row for the --throttle-off formats."""
        a = self.args
        off = a.throttle_off if "proxy" in a.servers else []
        fmts = a.formats + [f for f in off if f not in a.formats]
        rows = []
        for fmt in fmts:
            kinds = list(a.servers) if fmt in a.formats else []
            if fmt in off:
                kinds.insert(kinds.index("proxy") + 1 if "proxy" in kinds else 0, THROTTLE_OFF)
            rows.append((fmt, kinds))
        return rows

    def check_no_refusals(self, server: Httpd, what: str) -> None:
        """The throughput rows send only the right password: a refusal in the
        log (unknown user, mismatch, repeat, lockout) means the row measured
        something else, and with the throttle on it could lock the client out."""
        refused = REFUSAL_LINE.findall(server.log())
        if refused:
            note = (f"⚠ {what}: mod_auth_proxy logged {len(refused)} refused logins during the throughput row "
                    f"({', '.join(sorted(set(refused)))}): the row did not measure the warm path alone.")
            self.notes.append(note)
            progress(note)

    def squid_sha_check(self, path: Path) -> None:
        if any(k[1] == "squid" and k[2] == "sha" for k in self.rows):
            return
        out = subprocess.run([NCSA_AUTH, str(path)], input=f"{USER} {PASSWORD}\n", capture_output=True,
                             text=True, timeout=120).stdout.strip()
        for mode in self.args.modes:
            for users in self.args.sizes:
                self.rows[(mode, "squid", "sha", users)] = (0, "n/a", None)
        self.notes.append(f"Squid's basic_ncsa_auth does not support `{{SHA}}` entries: asked directly "
                          f"with the right password it answers `{out}`, so Squid {{SHA}} rows are n/a.")

    def baseline(self, kind: str, mode: str, block: int) -> float | None:
        """Mean of the no-auth runs just before and just after the block."""
        vals = [rps for b, rps in self.baselines.get((kind, mode), []) if b in (block - 1, block)]
        return statistics.mean(vals) if vals else None

    def throughput_md(self) -> str:
        a = self.args
        out = ["## Throughput, warm cache (requests/s, and × no-auth of the same server)", ""]
        out.append("One user, authenticated on every request with the same credentials, is the **last** line of the "
                   f"file. wrk, {self.wrk.threads} threads, {self.wrk.connections} keep-alive connections, "
                   f"{a.duration:g} s per cell after {a.warmup:g} s warm-up. Ratios for httpd rows are against httpd "
                   "without authentication, for Squid rows against Squid without authentication. mod_auth_proxy "
                   "cells are measured **paired**: 1-second slices of the row and of the no-auth httpd alternate "
                   f"(A B A B ..., {max(2, round(a.duration))} of each), the cell shows the median slice and the "
                   "median of the pairs' ratios, so that load from anything else on the machine hits both alike. "
                   "Rows where one request alone takes over 50 ms (stock with bcrypt or a large file) run "
                   "without warm-up and longer (8 × that time, at most 20 s). Other cells are compared with the mean of the "
                   "no-auth runs just before and after that file size's block (the no-auth rows list every run).")
        out.append("")
        if self.floor:
            out.append("The mod_authn_anon row (measured paired, like mod_auth_proxy) authenticates every request "
                       "through mod_auth_basic and `Require valid-user` but checks no password and reads no file: "
                       "it is what httpd's authentication machinery costs by itself, the ceiling for any "
                       "authentication module in this setup.")
            out.append("")
        if "proxy" in a.servers:
            text = ("The mod_auth_proxy rows run with its guessing throttle **on** (its default), so every request "
                    "also asks the throttle whether its address is locked out; no request of this section sends "
                    "a wrong password (each mod_auth_proxy server's error log is checked for refusals afterwards).")
            if a.throttle_off:
                text += (" The row \"mod_auth_proxy, throttle off\" (measured paired, like the others) is the same "
                         "server with `AuthProxyThrottle Off`: the difference between the two rows is what the "
                         "throttle costs on the warm path.")
            out.append(text)
            out.append("")
        sizes = a.sizes
        out.append("| Mode | Server | Hash | " + " | ".join(f"{n:,} users" for n in sizes) + " |")
        out.append("|---|---|---|" + "---|" * len(sizes))
        below = []
        for mode in a.modes:
            for kind in ["httpd", "squid"]:
                runs = self.baselines.get((kind, mode))
                if not runs:
                    continue
                vals = [r for _, r in runs]
                label = "httpd, no auth" if kind == "httpd" else "Squid, no auth"
                cell = f"{fmt_rps(statistics.median(vals))} (runs: {', '.join(fmt_rps(v) for v in vals)})"
                out.append(f"| {mode} | {label} | – | " + " | ".join([cell] + [""] * (len(sizes) - 1)) + " |")
                if kind == "httpd" and mode in self.floor:
                    r, paired = self.floor[mode]
                    cell = f"{fmt_rps(r.rps)} ({fmt_ratio(r.rps / paired)}×)" if paired else fmt_rps(r.rps)
                    out.append(f"| {mode} | httpd, mod_auth_basic + mod_authn_anon (no password check) | – | "
                               + " | ".join([cell] + [""] * (len(sizes) - 1)) + " |")
            for kind, fmts in self.table_rows():
                for fmt in fmts:
                    cells = []
                    for users in sizes:
                        entry = self.rows.get((mode, kind, fmt, users))
                        if entry is None:
                            cells.append("–")
                            continue
                        block, r, paired = entry
                        if isinstance(r, str):
                            cells.append(r)
                            continue
                        base = paired or self.baseline("squid" if kind == "squid" else "httpd", mode, block)
                        ratio = r.rps / base if base else None
                        cell = fmt_rps(r.rps) + (f" ({fmt_ratio(ratio)}×)" if ratio is not None else "")
                        if r.bad:
                            cell += f" ⚠{r.bad} failed"
                        if kind == "proxy" and ratio is not None and ratio < 0.95:
                            cell = f"**{cell}**"
                            below.append((mode, fmt, users, ratio))
                        cells.append(cell)
                    out.append(f"| {mode} | {LABELS[kind]} | {FORMATS[fmt][0]} | " + " | ".join(cells) + " |")
        out.append("")
        if "proxy" in a.servers:
            if below:
                out.append("mod_auth_proxy cells **in bold** are below the 0.95 × no-auth target: "
                           + "; ".join(f"{m} {FORMATS[f][0]} {u:,} users {r:.2f}×" for m, f, u, r in below) + ".")
            else:
                out.append("Every mod_auth_proxy cell meets the ≥ 0.95 × no-auth target.")
            out.append("")
        return "\n".join(out)

    # -- latency
    def latency(self) -> None:
        a = self.args
        kinds = [k for k in ("proxy", "stock") if k in a.servers]
        if not kinds:
            return
        progress(f"== latency per request: {LATENCY_USERS:,} users, {', '.join(a.latency_formats)}")
        lines = self.latency_intro()
        lines.append("| Hash | Case | mod_auth_proxy median | p90 | samples | verifications per request (debug log) | "
                     "stock median | p90 | samples |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        per_unknown = []
        for fmt in a.latency_formats:
            label = FORMATS[fmt][0]
            try:
                samples, verifs, connects = self.latency_of(fmt, kinds)
            except Exception as e:  # keep going: one broken format must not lose the run
                progress(f"latency {fmt}: {e}")
                lines.append(f"| {label} | error: {str(e).splitlines()[0][:100]} | | | | | | | |")
                continue
            lines += self.latency_rows(label, samples, verifs)
            if "proxy" in kinds:
                per_unknown.append(f"**{verifs['unknown']:.2f}** ({label})")
            if any(c > 1 for c in connects.values()):
                self.notes.append(f"Latency, {label}: a server closed the keep-alive connection; the client "
                                  f"reconnected outside the timed part (connections opened: {connects}).")
        lines.append("")
        if per_unknown:
            lines.append("Verifications per unknown-user request, mod_auth_proxy (APX01014 debug lines ÷ unknown-user "
                         "requests): " + ", ".join(per_unknown) + ". The ratio rows are what the time of a refusal "
                         "tells a client about whether the name exists: nothing if it reads 1.00×.")
            lines.append("")
        self.sections_md.append("\n".join(lines))

    def latency_intro(self) -> list[str]:
        return [
            f"## Latency per request: {LATENCY_USERS:,} users, reverse proxy, sequential requests", "",
            f"One file of {LATENCY_USERS:,} users per hash, every entry of that format and cost "
            f"({LATENCY_USERS - 1:,} filler users sharing one hash, and `{USER}`, a real `htpasswd` line, last), "
            "behind mod_auth_proxy and behind stock httpd (mod_auth_basic + mod_authn_file). A Python client sends "
            "one request at a time on one keep-alive connection per server, in rounds that send every case to every "
            "server once (mod_auth_proxy's cached case: its share of the cached samples), in a new random order "
            "each round, so that load from anything else on the machine hits every cell alike. A time runs "
            "from sending the request to the end of the response (the client's own overhead, about 0.1 ms, "
            "included; a right password also makes the trip to the backend).", "",
            "- *unknown user*: a name that is not in the file, a new one each request;",
            f"- *wrong password*: `{USER}` with a new wrong password each request, so mod_auth_proxy's shortcut for "
            "a repeated failure (APX01013) never answers;",
            "- *right password, uncached*: a filler user's first request, a different user each time, with the "
            "credential cache on (its default): a real first login, i.e. cache miss, verification and cache "
            "insert, on the same server and configuration as the other cases (rather than "
            "`AuthProxyCacheTimeout 0`, which would skip the cache altogether);",
            f"- *right password, cached*: `{USER}` again, verified once before the measurement. Stock "
            "mod_authn_file keeps no cache: its row verifies every request.", "",
            "mod_auth_proxy runs with **`AuthProxyThrottleExempt 127.0.0.1`** (the client's address: its wrong "
            "passwords would otherwise lock it out after 20) and `LogLevel warn auth_proxy:debug`, so that each "
            "hash verification leaves a line: APX01014 (dummy verification), APX01015 (the user's hash, no "
            "match), APX01010 (the user's hash, match). The verifications column counts them per case. Stock "
            "httpd runs with `LogLevel warn`.", "",
        ]

    @staticmethod
    def latency_rows(label: str, samples: dict, verifs: dict) -> list[str]:
        """One format's rows: a row per case, then the ratio that shows whether a name's existence leaks."""
        rows = []
        for case, case_label in LATENCY_CASES:
            cells = []
            for kind in ("proxy", "stock"):
                v = samples.get((kind, case))
                cells += [fmt_ms(statistics.median(v)), fmt_ms(p90(v)), str(len(v))] if v else ["–", "–", "–"]
                if kind == "proxy":
                    cells.append(f"{verifs[case]:.2f}" if v else "–")
            rows.append(f"| {label} | {case_label} | " + " | ".join(cells) + " |")
        ratios = []
        for kind in ("proxy", "stock"):
            u, w = samples.get((kind, "unknown")), samples.get((kind, "wrong"))
            ratios.append(f"**{fmt_times(statistics.median(w) / statistics.median(u))}**" if u and w else "–")
        rows.append(f"| {label} | **wrong password ÷ unknown user** (medians) | {ratios[0]} | | | | {ratios[1]} | | |")
        return rows

    def latency_of(self, fmt: str, kinds: list[str]):
        """Samples (ms) per (server kind, case), mod_auth_proxy's hash
        verifications per request per case (from its debug log), and how many
        connections each client opened."""
        path = self.files.path(fmt, LATENCY_USERS)
        servers, clients = {}, {}
        try:
            for kind in kinds:
                if kind == "proxy":
                    server = front(self.work, kind, self.backend, self.module, path,
                                   loglevel="warn auth_proxy:debug", global_extra="AuthProxyThrottleExempt 127.0.0.1")
                else:
                    server = front(self.work, kind, self.backend, self.module, path)
                servers[kind] = self.launch(server)
                t = self.targets(servers[kind], kind, basic(USER, PASSWORD))["reverse"]
                clients[kind] = KeepAliveClient(t)
                clients[kind].expect(t.credentials, 200)  # fills mod_auth_proxy's cache for the cached case
            offset = len(servers["proxy"].log()) if "proxy" in servers else 0
            samples = self.latency_rounds(fmt, clients)
            verifs = (self.latency_verifications(servers["proxy"].log()[offset:], samples)
                      if "proxy" in servers else {})
            for (kind, case), v in sorted(samples.items()):
                progress(f"latency {fmt} {kind:5} {case:8}: median {statistics.median(v):.2f} ms, "
                         f"p90 {p90(v):.2f} ms, {len(v)} samples"
                         + (f", {verifs[case]:.2f} verifications/request" if kind == "proxy" else ""))
            return samples, verifs, {k: c.connects for k, c in clients.items()}
        finally:
            for c in clients.values():
                c.close()
            for server in servers.values():
                self.retire(server)

    def latency_rounds(self, fmt: str, clients: dict) -> dict[tuple[str, str], list[float]]:
        """--latency-samples rounds; each sends every case once to every
        server, and mod_auth_proxy's cached case its share of --latency-cached
        (stock has no cache: its cached case is as slow as the others), in a
        new random order, so that no case always follows the same one."""
        n, n_cached = self.args.latency_samples, self.args.latency_cached
        samples: dict[tuple[str, str], list[float]] = {}
        order = random.Random(0)
        started = time.time()
        for i in range(n):
            jobs = [(case, kind) for case, _ in LATENCY_CASES for kind in clients]
            order.shuffle(jobs)
            for case, kind in jobs:
                reps = n_cached * (i + 1) // n - n_cached * i // n if case == "cached" and kind == "proxy" else 1
                status = 200 if case in ("uncached", "cached") else 407 if kind == "proxy" else 401
                for _ in range(reps):
                    ms = clients[kind].expect(latency_credentials(case, i), status)
                    samples.setdefault((kind, case), []).append(ms)
            if (i + 1) % 5 == 0 or i + 1 == n:
                progress(f"latency {fmt}: {i + 1}/{n} rounds, {time.time() - started:.0f} s")
        return samples

    def latency_verifications(self, log: str, samples: dict) -> dict[str, float]:
        """mod_auth_proxy's hash verifications per request of each case, from
        its debug lines; the user name tells the case."""
        counts = {case: 0 for case, _ in LATENCY_CASES}
        stray = []
        for number, user in VERIFY_LINE.findall(log):
            if number == "APX01014" and user.startswith("ghost"):
                counts["unknown"] += 1
            elif number == "APX01015" and user == USER:
                counts["wrong"] += 1
            elif number == "APX01010" and user.startswith("u"):
                counts["uncached"] += 1
            elif number == "APX01010" and user == USER:
                counts["cached"] += 1
            else:
                stray.append(f"{number} {user}")
        if stray:
            note = (f"⚠ Latency: mod_auth_proxy logged {len(stray)} hash verifications that no case accounts for "
                    f"(e.g. {', '.join(stray[:3])}).")
            self.notes.append(note)
            progress(note)
        return {case: counts[case] / max(1, len(samples.get(("proxy", case), []))) for case in counts}

    # -- cold cache
    def cold(self) -> None:
        a = self.args
        n = a.cold_users
        progress(f"== cold cache: {n} distinct users, bcrypt cost 10, round-robin")
        path, names = self.files.cold(n)
        self.cold_notes = []
        creds = [basic(u, COLD_PASSWORD) for u in names]
        lines = [f"## Cold cache: {n:,} distinct users round-robin (bcrypt cost 10, reverse proxy)", ""]
        counter = VerifyCounter(self.module)
        if counter.event:
            lines.append("Hash verifications are counted exactly: a perf uprobe on `apr_password_validate` "
                         "(which both mod_auth_proxy and mod_authn_file call for every verification) in the "
                         "httpd processes under test.")
        else:
            lines.append("perf is not available: hash verifications are estimated from the CPU time the httpd "
                         "processes used (one bcrypt-10 verification timed in this process).")
        lines.append("")
        lines.append("Passes send each user exactly once over 8 persistent connections (user *i* on connection "
                     "*i* mod 8, a Python client); the shifted pass moves every user to the next connection, so a "
                     "user may land in the other httpd child. The round-robin rows are wrk cycling through all users over "
                     f"its 8 connections, in {self.args.duration:g}-second slices until a slice needs no hash "
                     "verification (every user is cached in every child that sees it).")
        lines.append("")
        lines.append("| Server | Run | Requests | Time | req/s | Hash verifications |")
        lines.append("|---|---|---|---|---|---|")
        try:
            if "proxy" in a.servers:
                lines += self.cold_httpd("proxy", path, names, creds, counter)
                runs = [r for _, r in self.baselines.get(("httpd", "reverse"), [])]
                if self.converged_rps and runs:
                    base = statistics.median(runs)
                    self.cold_notes.append(
                        f"Once every user is cached where it lands, {n:,} users round-robin run at "
                        f"{fmt_rps(self.converged_rps)} req/s, {self.converged_rps / base:.2f} × the median no-auth "
                        f"reverse throughput of the throughput section ({fmt_rps(base)}; not paired).")
            if "stock" in a.servers:
                lines += self.cold_httpd("stock", path, names, creds, counter)
            if "squid" in a.servers:
                lines += self.cold_squid(path, names, creds)
        finally:
            counter.close()
        lines.append("")
        lines += [f"{n}\n" for n in self.cold_notes]
        self.sections_md.append("\n".join(lines))

    def cold_httpd(self, kind: str, path: Path, names, creds, counter: VerifyCounter) -> list[str]:
        a = self.args
        label = SERVERS[kind]
        server = self.launch(front(self.work, kind, self.backend, self.module, path))
        rows = []
        try:
            rev = self.targets(server, kind, None)["reverse"]
            header = "Proxy-Authorization" if kind == "proxy" else "Authorization"
            pids = server.pids()
            if kind == "proxy":
                pool = ConnPool(rev.port, 8)
                try:
                    for run, shift in (("pass 1 (cold)", 0), ("pass 2 (same connections)", 0),
                                       ("pass 3 (shifted connections)", 1)):
                        cpu0 = cpu_seconds(pids)
                        probe = counter.start(pids)
                        elapsed = pool.pass_(rev.path, header, creds, shift)
                        count = counter.finish(probe)
                        cpu = cpu_seconds(pids) - cpu0
                        rows.append(f"| {label} | {run} | {len(creds):,} | {elapsed:.2f} s | "
                                    f"{len(creds) / elapsed:,.0f} | {self.verif_text(count, cpu)} |")
                        progress(f"cold {kind} {run}: {elapsed:.2f} s, verifications {count} (cpu {cpu:.2f} s)")
                    spread = pool.process_spread(rev.port, pids)
                finally:
                    pool.close()
                if spread:
                    self.cold_notes.append(
                        f"The 8 client connections were served by the httpd children as {spread}. "
                        f"mod_auth_proxy's credential cache is one table in shared memory for all children, so "
                        f"a user verified in one child is a cache hit in the other: the shifted pass, which moves "
                        f"users to other connections (and children), should need no verification at all.")
            # wrk cycles through all users over its 8 connections (any child):
            # slices of `duration` seconds until one needs no verification at all.
            rot = [(header, c) for c in creds]
            first_row = None
            for slice_no in range(1, 100):
                probe = counter.start(pids)
                cpu1 = cpu_seconds(pids)
                r = self.wrk.run(rev, a.duration, rot)
                count = counter.finish(probe)
                cpu = cpu_seconds(pids) - cpu1
                verified = count if count is not None else self.verif_estimate(cpu)
                start, end = (slice_no - 1) * a.duration, slice_no * a.duration
                row = (f" | {r.requests:,} | {a.duration:g} s | {fmt_rps(r.rps)} | {self.verif_text(count, cpu)} |"
                       + (f" ⚠{r.bad} failed" if r.bad else ""))
                progress(f"cold {kind} round-robin {start:g}-{end:g} s: {r.rps:,.1f} req/s, verifications {count}")
                if slice_no == 1:
                    first_row = row
                    rows.append(f"| {label} | wrk round-robin, first {a.duration:g} s{row}")
                    if kind != "proxy" or verified < 0.5:
                        break
                    continue
                if verified < 0.5 or end >= a.cold_converge:
                    what = ("first slice without a verification" if verified < 0.5
                            else f"still verifying at the {a.cold_converge:g} s cap")
                    rows.append(f"| {label} | wrk round-robin, {start:g}–{end:g} s ({what}){row}")
                    if verified < 0.5:
                        self.converged_rps = r.rps
                    break
            del first_row
        finally:
            self.retire(server)
        return rows

    _hash_cpu: float | None = None
    converged_rps: float | None = None

    def verif_text(self, count: int | None, cpu: float) -> str:
        if count is not None:
            return f"{count:,}"
        return f"≈ {self.verif_estimate(cpu):,.0f} (estimated from {cpu:.2f} s CPU)"

    def verif_estimate(self, cpu: float) -> float:
        if self._hash_cpu is None:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import crypt  # noqa: PLC0415 (deprecated, still in Debian's 3.11)
            h = self.files.hash_line("bcrypt10", "cold", COLD_PASSWORD).split(":", 1)[1]
            t0 = time.process_time()
            for _ in range(5):
                crypt.crypt(COLD_PASSWORD, h)
            self._hash_cpu = (time.process_time() - t0) / 5
        return max(0.0, cpu / self._hash_cpu - 0.2)

    def cold_squid(self, path: Path, names, creds) -> list[str]:
        a = self.args
        label = SERVERS["squid"]
        if self.squid_reverse_header is None:
            self.probe_squid_reverse(path)
        sq = self.launch(Squid(self.work, self.backend, path))
        rows = []
        try:
            rev = self.targets(sq, "squid", None)["reverse"]
            header = self.squid_reverse_header or "Authorization"
            pool = ConnPool(rev.port, 8)
            try:
                for run, shift in (("pass 1 (cold)", 0), ("pass 2 (same connections)", 0),
                                   ("pass 3 (shifted connections)", 1)):
                    elapsed = pool.pass_(rev.path, header, creds, shift)
                    rows.append(f"| {label} | {run} | {len(creds):,} | {elapsed:.2f} s | "
                                f"{len(creds) / elapsed:,.0f} | (helper, not counted) |")
                    progress(f"cold squid {run}: {elapsed:.2f} s")
            finally:
                pool.close()
            rot = [(header, c) for c in creds]
            if a.warmup > 0:
                self.wrk.run(rev, a.warmup, rot)
            r = self.wrk.run(rev, a.duration, rot)
            rows.append(f"| {label} | wrk round-robin, {a.duration:g} s after {a.warmup:g} s warm-up | "
                        f"{r.requests:,} | {a.duration:g} s | {fmt_rps(r.rps)} | (helper, not counted) |")
        finally:
            self.retire(sq)
        return rows

    # -- reload
    def reload(self) -> None:
        a = self.args
        users = max(a.sizes) if a.sizes else 1000000
        users = 1000000 if 1000000 in SIZES else users
        progress(f"== reload of a {users:,}-user file under load")
        src = self.files.path("bcrypt10", users)
        rdir = self.work / "reload"
        rdir.mkdir(exist_ok=True)
        os.chmod(rdir, 0o755)
        path = rdir / "users.htpasswd"
        shutil.copyfile(src, path)
        os.chmod(path, 0o644)
        server = self.launch(front(self.work, "proxy", self.backend, self.module, path,
                                   loglevel="warn auth_proxy:info"))
        lines = [f"## Reload of a {users:,}-user file ({src.stat().st_size / 1e6:.0f} MB, bcrypt cost 10) under load",
                 ""]
        try:
            t = self.targets(server, "proxy", basic(USER, PASSWORD))["reverse"]
            self.check(t, "reload setup")
            loads = [e for e in load_events(server.log()) if e["pid"] == server.proc.pid and not e["reload"]]
            children = server.pids()[1:]
            # Changes at `spacing` and 2 x `spacing` + 2 s into the run; the run
            # lasts long enough for the second reload to finish inside it.
            seconds = round(3 * a.reload_spacing + 4)
            base = self.wrk.run(t, seconds)
            progress(f"reload baseline: {base.rps:,.0f} req/s, max {base.max_ms:.1f} ms, >50 ms: {base.over50}")

            wrk = self.wrk.start(t, seconds)
            t0 = time.time()
            events = []
            for at, how in ((a.reload_spacing, "touch"), (2 * a.reload_spacing + 2, "replace")):
                time.sleep(max(0.0, t0 + at - time.time()))
                events.append(self.change_and_wait(server, path, how, children))
                if time.time() > t0 + seconds:
                    self.notes.append("The reload under load finished after the wrk run ended: "
                                      "raise --reload-spacing.")
            during = self.wrk.result(wrk)
            progress(f"reload under load: {during.rps:,.0f} req/s, max {during.max_ms:.1f} ms, "
                     f">50 ms: {during.over50}, events {events}")
            if loads:
                lines.append("Load in the parent before the fork (from the log): "
                             + "; ".join(f"{e['users']:,} users {'mapped' if e['mapped'] else 'built'} in {e['ms']} ms"
                                         for e in loads) + ".")
                lines.append("")
            lines.append(f"| Change | Each child's reload (log, APX02003: built the index, or mapped the one "
                         f"another process built) | Change → every child ({len(children)}) reloaded | "
                         "New user admitted |")
            lines.append("|---|---|---|---|")
            for ev in events:
                lines.append(f"| {ev['what']} | {', '.join(ev['ms'])} | {ev['wall']} | {ev['admitted']} |")
            lines.append("")
            lines.append("| wrk run (8 connections, one cached user) | req/s | max latency | p99 | requests > 50 ms |")
            lines.append("|---|---|---|---|---|")
            lines.append(f"| {seconds} s, no reload | {fmt_rps(base.rps)} | {base.max_ms:.1f} ms | "
                         f"{base.p99_ms:.1f} ms | {base.over50} of {base.requests:,} |")
            lines.append(f"| {seconds} s, two reloads in it | {fmt_rps(during.rps)} | {during.max_ms:.1f} ms | "
                         f"{during.p99_ms:.1f} ms | {during.over50} of {during.requests:,} |"
                         + (f" ⚠{during.bad} failed" if during.bad else ""))
            lines.append("")
        finally:
            self.retire(server)
        self.sections_md.append("\n".join(lines))

    def change_and_wait(self, server: Httpd, path: Path, how: str, children: list[int]) -> dict:
        """Changes the file, then waits until every child has logged its reload."""
        before = len(load_events(server.log()))
        if how == "touch":
            what = "`touch` (mtime only)"
            newuser = None
            started = time.time()
            os.utime(path)
        else:
            what = "replaced by `mv` (one user added)"
            newuser = f"new{int(time.time())}"
            tmp = path.with_suffix(".new")
            shutil.copyfile(path, tmp)
            with open(tmp, "a") as f:
                f.write(self.files.hash_line("sha", newuser, PASSWORD) + "\n")
            os.chmod(tmp, 0o644)
            started = time.time()
            os.rename(tmp, path)
        deadline = started + 30
        per_child: list[str] = []
        wall = "not within 30 s"
        while time.time() < deadline:
            events = [e for e in load_events(server.log())[before:] if e["reload"] and e["pid"] in children]
            if len({e["pid"] for e in events}) >= len(children):
                wall = f"{(time.time() - started) * 1000:.0f} ms"
                per_child = [f"{'mapped' if e['mapped'] else 'built'} in {e['ms']} ms" for e in events]
                break
            time.sleep(0.01)
        admitted = "–"
        if newuser:
            t = Target(server.port, f"/r/{STATIC}", "Proxy-Authorization", basic(newuser, PASSWORD))
            statuses = [request_once(t)[0] for _ in range(6)]
            admitted = "yes (6 fresh connections: 200)" if all(s == 200 for s in statuses) else f"no: {statuses}"
        return {"what": what, "ms": per_child or ["?"], "wall": wall, "admitted": admitted}

    # -- memory
    # -- LDAP behind the proxy
    def ldap(self) -> None:
        """A directory-backed proxy: ours, stock mod_authnz_ldap with mod_ldap's
        cache, and Squid's basic_ldap_auth, with what each asks the directory."""
        a = self.args
        sys.path.insert(0, str(REPO / "tests" / "integration"))
        from directory_servers import PEOPLE, Slapd  # the tests' own launcher
        progress("== LDAP-backed proxy")
        slapd = Slapd(self.work / "slapd").start()
        try:
            slapd.add_tree({USER: PASSWORD})
            url = f"{slapd.url}/{PEOPLE}?uid"
            rows = []
            creds = basic(USER, PASSWORD)
            cases = [("httpd, no auth", "noauth", None),
                     ("mod_auth_proxy, AuthProxyProvider ldap (warm)", "proxy-ldap", None),
                     ("stock mod_auth_basic + mod_authnz_ldap, mod_ldap cache (LDAPCacheEntries 1024)", "stock-ldap", None)]
            if "squid" in a.servers:
                cases += [("Squid, no auth", "squid-noauth", None),
                          ("Squid basic_ldap_auth (credentialsttl 2 hours)", "squid-ldap",
                           f"/usr/lib/squid/basic_ldap_auth -b {PEOPLE} -f uid=%s -H {slapd.url}")]
            baseline = {}
            for label, kind, program in cases:
                if kind.startswith("squid"):
                    server = self.launch(Squid(self.work, self.backend, None, auth_program=program))
                    t = self.targets(server, "squid", creds if program else None)["forward"]
                else:
                    server = self.launch(front(self.work, kind, self.backend, self.module, url))
                    t = self.targets(server, kind, None if kind == "noauth" else creds)["reverse"]
                try:
                    self.check(t, label)
                    self.wrk.run(t, a.warmup)
                    ops0 = slapd.operations()
                    r = self.wrk.run(t, a.duration)
                    ops = slapd.operations() - ops0
                    per_1000 = ops / max(1, r.requests) * 1000
                    base = baseline.get("squid" if kind.startswith("squid") else "httpd")
                    if kind in ("noauth", "squid-noauth"):
                        baseline["squid" if kind.startswith("squid") else "httpd"] = r.rps
                    ratio = f" ({r.rps / base:.2f}×)" if base else ""
                    rows.append(f"| {label} | {fmt_rps(r.rps)}{ratio} | {per_1000:,.2f} |"
                                + (f" ⚠{r.bad} failed" if r.bad else ""))
                    progress(f"ldap {label}: {r.rps:,.0f} req/s, {per_1000:.2f} LDAP operations per 1,000 requests")
                finally:
                    self.retire(server)
        finally:
            slapd.stop()
        lines = ["## An LDAP-backed proxy (slapd on loopback)", "",
                 f"One user in a real slapd (OpenLDAP, mdb, started by the benchmark with its stats log on), "
                 f"authenticated on every request; wrk, {a.duration:g} s per row after {a.warmup:g} s of warm-up. "
                 "httpd rows go through the reverse proxy, Squid rows through Squid's forward port (its "
                 "accelerator port answers 401 and reads `Authorization`). LDAP operations are the BIND, SRCH "
                 "and CMP lines slapd logged during the measured run, per 1,000 requests. mod_auth_proxy runs "
                 "with mod_ldap's caches at their defaults too; its own credential cache answers first, so a "
                 "user costs one bind per `AuthProxyCacheTimeout` for the whole server.", "",
                 "| Server | req/s (× no-auth) | LDAP operations per 1,000 requests |", "|---|---|---|"] + rows + [""]
        self.sections_md.append("\n".join(lines))

    # -- warm path in process, beside httpd's CPU per request
    def micro(self) -> None:
        """The warm path's cost in process (bench/micro/warm_path.cpp, Google
        Benchmark), next to the CPU an httpd process spends on a proxied request."""
        a = self.args
        progress("== warm path in process")
        binary = REPO / "build" / "warm_path_bench"
        lines = ["## The warm path in process, beside a whole proxied request", ""]
        if not binary.exists():
            lines.append("`build/warm_path_bench` is missing (bench/run builds it where libbenchmark-dev is installed).")
            self.sections_md.append("\n".join(lines + [""]))
            return
        out = subprocess.run([str(binary), "--benchmark_format=json", "--benchmark_min_time=1",
                              "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true"],
                             capture_output=True, text=True, timeout=600, check=True).stdout
        cases = {}
        for b in json.loads(out)["benchmarks"]:
            if b.get("aggregate_name") == "median":
                cases[b["run_name"]] = b["cpu_time"]  # ns
        # httpd's own CPU per proxied request: parent + children, over a wrk run.
        path = self.files.path("bcrypt10", 1000000)
        cpu_per_request = {}
        for label, server in (("httpd, no auth", front(self.work, "noauth", self.backend, self.module)),
                              ("mod_auth_proxy (throttle on), bcrypt cost 10, 1,000,000 users",
                               front(self.work, "proxy", self.backend, self.module, path))):
            server = self.launch(server)
            try:
                kind = "noauth" if label.startswith("httpd") else "proxy"
                t = self.targets(server, kind, None if kind == "noauth" else basic(USER, PASSWORD))["reverse"]
                self.check(t, label)
                self.wrk.run(t, 1)
                pids = server.pids()
                cpu0 = cpu_seconds(pids)
                r = self.wrk.run(t, a.duration)
                cpu = cpu_seconds(pids) - cpu0
                cpu_per_request[label] = cpu / max(1, r.requests) * 1e9  # ns
                progress(f"micro: {label}: {r.rps:,.0f} req/s, {cpu_per_request[label] / 1000:.1f} us CPU per request")
            finally:
                self.retire(server)
        proxied = cpu_per_request["mod_auth_proxy (throttle on), bcrypt cost 10, 1,000,000 users"]
        lines.append("`build/warm_path_bench` (Google Benchmark, median of 5 repetitions of at least 1 s) runs the "
                     "core's `Authenticator::authenticate()` on one request over and over: parse the Basic header, "
                     "ask the throttle about the address, find the user in a 1,000,000-user index (the last line), "
                     "key the credential cache (HMAC-SHA256), find the key in the shared table and count the verdict in the "
                     "shared metrics, as the module does. The httpd rows are "
                     f"the CPU time of all httpd processes (parent and children, /proc) over a {a.duration:g} s wrk run "
                     "(8 keep-alive connections, reverse proxy to the static backend) divided by the requests it "
                     "completed: what one proxied request costs httpd, authentication included.")
        lines.append("")
        lines.append("| What | per request | share of mod_auth_proxy's proxied request |")
        lines.append("|---|---|---|")
        names = {"cached_throttle_on": "cached credentials, user file store, throttle on (the warm path)",
                 "cached_throttle_off": "cached credentials, user file store, throttle off",
                 "cached_directory_store": "cached credentials, a directory store (AuthProxyProvider ldap), throttle on",
                 "header_parse_alone": "parsing the Basic header alone"}
        for key, name in names.items():
            if key in cases:
                lines.append(f"| in process: {name} | {cases[key]:,.0f} ns | {cases[key] / proxied * 100:.2f} % |")
        for label, ns in cpu_per_request.items():
            lines.append(f"| httpd CPU per proxied request: {label} | {ns / 1000:,.1f} µs | {ns / proxied * 100:.0f} % |")
        if "cached_throttle_on" in cases and "cached_throttle_off" in cases:
            diff = cases["cached_throttle_on"] - cases["cached_throttle_off"]
            lines.append("")
            lines.append(f"The throttle adds {diff:,.0f} ns to a cached request "
                         f"({diff / proxied * 100:.3f} % of a proxied request's CPU).")
        lines.append("")
        self.sections_md.append("\n".join(lines))

    def memory(self) -> None:
        a = self.args
        users = 1000000
        progress("== resident memory with a 1,000,000-user file")
        lines = ["## Server memory with a 1,000,000-user file (parent + children, /proc/<pid>/smaps_rollup)", ""]
        lines.append("Δ = the server's memory with the 1,000,000-user file minus the same server with a 1-user "
                     "file (PSS: 1-user column), as a multiple of the file's size. *Started*: after start and "
                     "16 requests; *children reloaded*: the file was `touch`ed and every child has logged its "
                     "reload; *settled*: 12 s after the change, past the parent's maintenance tick (about every 10 s), "
                     "when nothing may hold the old index any more. Server processes map the index the builder "
                     "wrote and read only the pages their lookups touch, so PSS shows little of it; the index "
                     "file's pages in the page cache (`fincore`, counted once for all processes) are the rest of "
                     "its cost. *Total* = Δ PSS + index in the page cache.")
        lines.append("")
        lines.append("| MPM | Hash | File size | Processes | PSS: 1-user file | Δ PSS started | "
                     "Δ PSS children reloaded | Δ PSS settled | index in the page cache (started / settled) | "
                     "Total settled | Δ RSS sum (started / children / settled) |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        small_dir = self.work / "memory"
        small_dir.mkdir(exist_ok=True)
        os.chmod(small_dir, 0o755)
        for mpm in a.mem_mpms:
            for fmt in a.mem_formats:
                small = small_dir / f"{fmt}-1.htpasswd"
                small.write_text(self.files.hash_line(fmt, USER, PASSWORD) + "\n")
                os.chmod(small, 0o644)
                big = small_dir / f"{fmt}-{users}.htpasswd"
                shutil.copyfile(self.files.path(fmt, users), big)
                os.chmod(big, 0o644)
                size_kb = big.stat().st_size / 1024
                base = self.memory_of(mpm, small, reload=False)[0]
                loaded, after, settled, nproc = self.memory_of(mpm, big, reload=True)

                def delta(m, i=1) -> str:
                    d = m[i] - base[i]
                    return f"{d / 1024:.0f} MB ({d / size_kb:.2f}×)"

                def share(kb: int) -> str:
                    return f"{kb / 1024:.0f} MB ({kb / size_kb:.2f}×)"

                total = settled[1] - base[1] + settled[2]
                lines.append(
                    f"| {mpm} | {FORMATS[fmt][0]} | {size_kb / 1024:.0f} MB | {nproc} | {base[1] / 1024:.0f} MB | "
                    f"{delta(loaded)} | {delta(after)} | {delta(settled)} | "
                    f"{share(loaded[2])} / {share(settled[2])} | {share(total)} | "
                    f"{delta(loaded, 0)} / {delta(after, 0)} / {delta(settled, 0)} |")
                progress(f"memory {mpm} {fmt}: base PSS {base[1]} kB, loaded {loaded[1]} kB, after reload "
                         f"{after[1]} kB, settled {settled[1]} kB, index in the page cache "
                         f"{loaded[2]} / {settled[2]} kB, file {size_kb:.0f} kB")
        lines.append("")
        self.sections_md.append("\n".join(lines))

    def memory_of(self, mpm: str, path: Path, reload: bool):
        """(Rss, Pss) sums right after start, after every child reloaded, and
        12 s after the change (past the parent's maintenance tick)."""
        server = self.launch(front(self.work, "proxy", self.backend, self.module, path, mpm=mpm,
                                   loglevel="warn auth_proxy:info"))
        try:
            t = self.targets(server, "proxy", basic(USER, PASSWORD))["reverse"]
            for _ in range(16):  # fresh connections: spread over the children
                self.check(t, f"memory {mpm}")
            time.sleep(1.0)
            pids = server.pids()
            loaded = memory_kb(pids) + (index_cache_kb(server.root),)
            if not reload:
                return loaded, None, None, len(pids)
            children = pids[1:]
            before = len(load_events(server.log()))
            os.utime(path)
            changed = time.monotonic()

            def reloaded(who: list[int], timeout: float) -> bool:
                deadline = time.time() + timeout
                while time.time() < deadline:
                    done = {e["pid"] for e in load_events(server.log())[before:] if e["reload"]}
                    if all(p in done for p in who):
                        return True
                    time.sleep(0.05)
                return False

            reloaded(children, 60)
            time.sleep(0.5)
            for _ in range(16):
                self.check(t, f"memory {mpm}")
            after = memory_kb(server.pids()) + (index_cache_kb(server.root),)
            time.sleep(max(0.0, changed + 12 - time.monotonic()))
            settled = memory_kb(server.pids()) + (index_cache_kb(server.root),)
            return loaded, after, settled, len(pids)
        finally:
            self.retire(server)

    # -- report
    def report(self, started: float, load_before: str) -> str:
        a = self.args
        head = ["# mod_auth_proxy benchmark", ""]
        cpu = "?"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        httpd_v = subprocess.run([HTTPD_BIN, "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        squid_v = subprocess.run(["squid", "-v"], capture_output=True, text=True).stdout.splitlines()[0] \
            if shutil.which("squid") else "-"
        head += [
            f"- Run: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, `bench/run {' '.join(sys.argv[1:])}`, "
            f"{(time.time() - started) / 60:.1f} minutes; module {self.module_desc}.",
            f"- Machine: {os.cpu_count()} × {cpu}, Linux {platform.release()}; load average (1, 5, 15 min) "
            f"before {load_before}, after {' '.join(Path('/proc/loadavg').read_text().split()[0:3])}.",
            f"- {httpd_v.replace('Server version: ', '')} (event MPM, 2 processes × 25 threads, LogLevel warn, "
            f"no access log) in front of a second httpd serving a {len(STATIC_BODY)}-byte static file; "
            f"{squid_v} (1 worker, 5 basic_ncsa_auth helpers, credentialsttl 2 hours, no disk cache, "
            "`cache deny all`); client wrk with 2 threads and 8 keep-alive connections; everything shares the "
            "same CPUs, so absolute numbers are low and noisy, ratios are what to read.",
            "- Reverse: httpd `ProxyPass` in `<Location>` (mod_auth_proxy reads `Proxy-Authorization` and "
            "answers 407; stock mod_auth_basic reads `Authorization` and answers 401); forward: absolute-URI "
            "requests, `ProxyRequests On` + `<Proxy>`, `Proxy-Authorization` / 407 for everyone.",
        ]
        if "proxy" in a.servers and "throughput" in a.sections:
            head.append("- mod_auth_proxy's throughput rows run with its guessing throttle **on** (its default: 20 "
                        "distinct failed logins per address within 600 s lock the address out)"
                        + (", next to a reference row with `AuthProxyThrottle Off`" if a.throttle_off else "")
                        + "; they send only the right password.")
        if "proxy" in a.servers and "latency" in a.sections:
            head.append("- The latency section sends wrong passwords and unknown users from 127.0.0.1: its "
                        "mod_auth_proxy runs with `AuthProxyThrottleExempt 127.0.0.1` and "
                        "`LogLevel warn auth_proxy:debug`.")
        if self.notes:
            head += [f"- {n}" for n in self.notes]
        head.append("")
        parts = ["\n".join(head)]
        if "throughput" in a.sections:
            parts.append(self.throughput_md())
        parts += self.sections_md
        return "\n".join(parts) + "\n"


def latency_credentials(case: str, i: int) -> str:
    """The credentials of request i of a latency case (see LATENCY_CASES)."""
    if case == "unknown":
        return basic(f"ghost{i:05d}", f"guess-{i}")
    if case == "wrong":
        return basic(USER, f"wrong-{i}")
    if case == "uncached":  # filler users from the end of the file, each once
        return basic(UserFiles.filler(LATENCY_USERS - 2 - i), FILLER_PASSWORD)
    return basic(USER, PASSWORD)


class KeepAliveClient:
    """Sequential, timed requests on one persistent HTTP/1.1 connection.
    Should the server close it, the next request reconnects before its
    clock starts."""

    def __init__(self, t: Target) -> None:
        self.target = t
        self.conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=300)
        self.connects = 0

    def expect(self, credentials: str, status: int) -> float:
        """One request with these credentials; its time in ms. Any other status than `status` is an error."""
        if self.conn.sock is None:
            self.conn.connect()
            self.connects += 1
        started = time.perf_counter()
        self.conn.request("GET", self.target.path, headers={self.target.header: credentials})
        resp = self.conn.getresponse()
        resp.read()
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status != status:
            raise RuntimeError(f"expected {status}, got {resp.status} on port {self.target.port}")
        return elapsed

    def close(self) -> None:
        self.conn.close()


class ConnPool:
    """N persistent HTTP/1.1 connections, each driven by its own thread."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        self.conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=300) for _ in range(n)]
        for c in self.conns:
            c.connect()

    def pass_(self, path: str, header: str, creds: list[str], shift: int) -> float:
        n = len(self.conns)
        errors: list[str] = []

        def work(k: int) -> None:
            conn = self.conns[(k + shift) % n]
            for i in range(k, len(creds), n):
                conn.request("GET", path, headers={header: creds[i]})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(f"user #{i}: {resp.status}")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
        started = time.time()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.time() - started
        if errors:
            raise RuntimeError(f"cold pass failed: {errors[:5]}")
        return elapsed

    def process_spread(self, port: int, pids: list[int]) -> str:
        """Which server process holds each connection (ss -tnp)."""
        try:
            out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                                 capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
        mine = {c.sock.getsockname()[1] for c in self.conns if c.sock}
        per_pid: dict[int, int] = {}
        for line in out.splitlines():
            m = re.search(r"127\.0\.0\.1:\d+\s+127\.0\.0\.1:(\d+).*pid=(\d+)", line)
            if m and int(m.group(1)) in mine:
                per_pid[int(m.group(2))] = per_pid.get(int(m.group(2)), 0) + 1
        if not per_pid:
            return ""
        return " + ".join(f"{v} (pid {k})" for k, v in sorted(per_pid.items()))

    def close(self) -> None:
        for c in self.conns:
            c.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small subset for a smoke check (~4 min): {SHA} and bcrypt 10, 1,000 and 1,000,000 users, "
                        "2 s per cell, no warm-up, 10 latency samples (100 cached), 100 cold users, "
                        "memory under event only")
    p.add_argument("--servers", default=",".join(SERVERS), help=f"comma list of {','.join(SERVERS)}")
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma list of {','.join(FORMATS)}")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma list of user counts")
    p.add_argument("--modes", default=",".join(MODES), help="comma list of reverse,forward")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {','.join(SECTIONS)}")
    p.add_argument("--duration", type=float, default=5, help="seconds measured per cell (default 5)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of warm-up per cell (default 1)")
    p.add_argument("--throttle-off", default="bcrypt10",
                   help="formats of the throughput reference row \"mod_auth_proxy, throttle off\" "
                        "(every --sizes size, both modes; default bcrypt10; 'none' for no such row)")
    p.add_argument("--latency-formats", default="bcrypt10,bcrypt12", help="hash formats of the latency section")
    p.add_argument("--latency-samples", type=int, default=20,
                   help="latency: requests per server and case (default 20; mod_auth_proxy's cached case: "
                        "--latency-cached)")
    p.add_argument("--latency-cached", type=int, default=200,
                   help="latency: requests of mod_auth_proxy's cached case (default 200)")
    p.add_argument("--cold-users", type=int, default=1000, help="distinct users in the cold run (default 1000)")
    p.add_argument("--cold-converge", type=float, default=90,
                   help="seconds of round-robin after which the cold run stops waiting for the cache to fill")
    p.add_argument("--reload-spacing", type=float, default=3, help="seconds between reloads under load")
    p.add_argument("--mem-mpms", default="event,prefork")
    p.add_argument("--mem-formats", default="bcrypt10,sha")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.md"), help="where the report goes")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, user files)")
    a = p.parse_args(argv)
    explicit = {x.split("=")[0] for x in argv if x.startswith("--")}
    if a.quick:
        defaults = {"--formats": "sha,bcrypt10", "--sizes": "1000,1000000", "--duration": 2, "--warmup": 0,
                    "--latency-samples": 10, "--latency-cached": 100,
                    "--cold-users": 100, "--cold-converge": 20, "--mem-mpms": "event", "--mem-formats": "bcrypt10",
                    "--reload-spacing": 2}
        for opt, val in defaults.items():
            if opt not in explicit:
                setattr(a, opt[2:].replace("-", "_"), val)
    for name, allowed in (("servers", SERVERS), ("formats", FORMATS), ("modes", MODES), ("sections", SECTIONS),
                          ("mem_formats", FORMATS), ("mem_mpms", ["event", "worker", "prefork"]),
                          ("throttle_off", FORMATS), ("latency_formats", FORMATS)):
        vals = [v.strip() for v in str(getattr(a, name)).split(",") if v.strip() and v.strip() != "none"]
        bad = [v for v in vals if v not in allowed]
        if bad:
            p.error(f"--{name.replace('_', '-')}: unknown {bad}; choose from {list(allowed)}")
        setattr(a, name, vals)
    a.sizes = [int(x) for x in str(a.sizes).split(",") if x.strip()]
    if not 1 <= a.latency_samples < LATENCY_USERS or a.latency_cached < 1:
        p.error(f"--latency-samples: 1 to {LATENCY_USERS - 1} (each uncached sample is a new user of the file); "
                "--latency-cached: at least 1")
    return a


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    module = os.environ.get("AUTH_PROXY_MODULE") or str(REPO / "build" / "mod_auth_proxy.so")
    if not Path(module).exists():
        print(f"{module} is missing: run bench/run (it builds the module)", file=sys.stderr)
        return 2
    for tool in ["wrk", "htpasswd"] + (["squid"] if "squid" in a.servers else []):
        if not shutil.which(tool):
            print(f"{tool} is missing: run bench/run (it installs what is needed)", file=sys.stderr)
            return 2
    started = time.time()
    load_before = Path("/proc/loadavg").read_text().split()[0:3]
    work = Path(tempfile.mkdtemp(prefix="auth-proxy-bench-"))
    os.chmod(work, 0o755)
    # Every server of the run loads this copy, even if build/ is rebuilt meanwhile.
    snapshot = work / "mod_auth_proxy.so"
    shutil.copyfile(module, snapshot)
    os.chmod(snapshot, 0o755)
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()[:12]
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "?"
    b = Bench(a, work, str(snapshot))
    b.module_desc = f"{module} (sha256 {digest}…, tree at commit {commit} when the run started)"
    b.files = UserFiles(work / "files")
    b.wrk = Wrk(work)
    progress(f"work directory {work}")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        b.backend = b.launch(start_backend(work))
        if "throughput" in a.sections:
            b.throughput()
        if "latency" in a.sections:
            b.latency()
        if "micro" in a.sections and "proxy" in a.servers:
            b.micro()
        if "ldap" in a.sections:
            b.ldap()
        if "cold" in a.sections:
            b.cold()
        if "reload" in a.sections and "proxy" in a.servers:
            b.reload()
        if "memory" in a.sections and "proxy" in a.servers:
            b.memory()
        md = b.report(started, " ".join(load_before))
    finally:
        for server in list(b.live):
            try:
                server.stop()
            except Exception:
                pass
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(md)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    progress(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
