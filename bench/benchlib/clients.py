"""The clients: wrk for throughput, and Python clients for single timed
requests (one keep-alive connection) and for passes of many users over a
few persistent connections."""

from __future__ import annotations

import http.client
import re
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .report import progress


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

    def paired(self, t: Target, base: Target, seconds: float, warmup: float) -> tuple[WrkResult, float]:
        """Alternates 1-second slices of the row and of a reference server
        (A B A B ...), so that load from anything else on the machine hits both
        alike. Returns the row's median slice (requests and failures summed
        over all slices) and the reference's rate implied by the median of the
        slice pairs' ratios."""
        if warmup > 0:
            self.run(t, warmup)
        mine, ratios = [], []
        for _ in range(max(2, round(seconds))):
            x = self.run(t, 1)
            y = self.run(base, 1)
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

    def measure(self, t: Target, seconds: float, warmup: float, rotate=None) -> WrkResult:
        if warmup > 0:
            self.run(t, warmup, rotate)
        r = self.run(t, seconds, rotate)
        if r.bad:
            progress(f"  WARNING: {r.bad} failed requests (non-2xx or socket errors) in this row")
        return r


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
