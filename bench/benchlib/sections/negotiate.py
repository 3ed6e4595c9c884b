"""Kerberos single sign-on to a forward proxy: Negotiate on new connections
(cold) and on kept-alive connections (warm) for mod_auth_proxy, Debian's
mod_auth_gssapi and Squid's negotiate_kerberos_auth, each paired with the
same server without authentication, against a real MIT KDC."""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import basic
from kerberos import USERS, Kdc, negotiate_header

from .. import REPO
from ..clients import Target
from ..measure import cpu_seconds, process_tree
from ..report import fmt_ratio, fmt_rps, progress
from ..run import Run
from ..servers import Squid

LOAD_CLIENT = REPO / "build" / "negotiate_load"
SERVICE = "HTTP/127.0.0.1"          # the proxy's name as the clients ask for it (-x http://127.0.0.1:port)
SQUID_HELPER = "/usr/lib/squid/negotiate_kerberos_auth"
CONNECTIONS = 8
COLD_SLICE = 1000                   # requests (and tokens) per cold slice
CLOCKSKEW = 300                     # MIT's default: how long the acceptors' replay caches keep a token

LABELS = {"proxy-negotiate": "mod_auth_proxy, `AuthType ProxyNegotiate`",
          "gssapi": "mod_auth_gssapi, `AuthType GSSAPI`, `GssapiConnectionBound On`",
          "squid-negotiate": "Squid, `negotiate_kerberos_auth`",
          "httpd": "httpd, no auth", "squid": "Squid, no auth"}


def measure(run: Run) -> None:
    if not LOAD_CLIENT.exists():
        progress(f"negotiate: {LOAD_CLIENT} is missing (bench/run builds it): section skipped")
        return
    section = NegotiateSection(run)
    saved = dict(os.environ)
    try:
        section.measure()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    run.sections_md.append(section.markdown())


@dataclass
class Slice:
    rps: float
    requests: int
    cpu: float          # server CPU seconds over the slice (all its processes)
    p50_ms: float
    p99_ms: float
    failed: int
    statuses: dict


@dataclass
class Row:
    label: str
    mode: str
    mine: list = field(default_factory=list)    # Slice of the authenticating server
    base: list = field(default_factory=list)    # Slice of its no-auth pair, same client mode
    note: str = ""

    def median(self, side: str) -> Slice:
        slices = getattr(self, side)
        return sorted(slices, key=lambda s: s.rps)[len(slices) // 2]

    def ratio(self) -> float:
        return statistics.median(x.rps / y.rps for x, y in zip(self.mine, self.base) if y.rps)

    @staticmethod
    def cpu_us(slices: list) -> float:
        return sum(s.cpu for s in slices) / max(1, sum(s.requests for s in slices)) * 1e6


class TokenMaker:
    """A KDC of the section's own (realm PROXY.TEST), the proxy's keytab, alice's
    TGT, and fresh SPNEGO tokens for HTTP/127.0.0.1 made with python3-gssapi."""

    def __init__(self, work: Path) -> None:
        self.kdc = Kdc(work / "kdc", clockskew=CLOCKSKEW).start()
        self.kdc.add_user("alice", USERS["alice"])
        self.kdc.add_service(SERVICE)
        # Read by mod_auth_proxy's parent (root), mod_auth_gssapi's children (www-data)
        # and Squid's helpers (proxy): a bench keytab, world-readable.
        self.keytab = self.kdc.keytab(work / "http.keytab", SERVICE)
        os.chmod(self.keytab, 0o644)
        self.ccache = self.kdc.kinit("alice", USERS["alice"], work / "alice.ccache")
        # Every server started from here on gets the realm's krb5.conf and a replay cache directory.
        os.environ.update(self.kdc.server_env(work / "rcache"))
        self.dir = work / "tokens"
        self.dir.mkdir(exist_ok=True)
        self.n = 0
        self.made = 0
        self.making = 0.0

    def tokens(self, count: int) -> Path:
        """A file of @p count fresh Proxy-Authorization values, one a line."""
        started = time.perf_counter()
        lines = [negotiate_header("127.0.0.1", self.ccache) for _ in range(count)]
        self.making += time.perf_counter() - started
        self.made += count
        self.n += 1
        path = self.dir / f"t{self.n}"
        path.write_text("\n".join(lines) + "\n")
        return path

    def rate(self) -> float:
        return self.made / self.making if self.making else 0.0

    def stop(self) -> None:
        self.kdc.stop()


class NegotiateSection:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.rows: list[Row] = []
        self.challenges: dict[str, str] = {}
        self.basic_rows: list[str] = []     # Basic against the KDC, rendered
        self.client_check = ""              # negotiate_load beside wrk on the no-auth httpd

    # -- one slice of the load client against one server
    def slice(self, server, t: Target, mode: str, tokens: Path | None, cycle: bool, seconds: float,
              requests: int = 0) -> Slice:
        cmd = [str(LOAD_CLIENT), "--port", str(t.port), "--url", t.path, "--mode", mode,
               "--connections", str(CONNECTIONS), "--seconds", str(seconds)]
        if tokens:
            cmd += ["--tokens", str(tokens)] + (["--cycle"] if cycle else [])
        if requests:
            cmd += ["--requests", str(requests)]
        pids = self.pids(server)
        before = cpu_seconds(pids)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        used = cpu_seconds(pids) - before
        if out.returncode != 0:
            raise RuntimeError(f"negotiate_load failed: {out.stderr}")
        r = json.loads(out.stdout)
        failed = r["failed"] + r["handshake_failed"]
        return Slice(r["rps"], r["requests"], used, r["p50_us"] / 1000, r["p99_us"] / 1000, failed,
                     r["statuses"])

    @staticmethod
    def pids(server) -> list[int]:
        return server.pids() if hasattr(server, "pids") else process_tree(server.proc.pid)

    # -- the section
    def measure(self) -> None:
        a = self.run.args
        progress("== negotiate (Kerberos SSO on a forward proxy: cold and warm, paired with no auth)")
        self.maker = TokenMaker(self.run.work)
        noauth: dict = {}
        try:
            noauth["httpd"] = self.run.launch(self.run.front("noauth"))
            cases = [("proxy-negotiate", "httpd"), ("gssapi", "httpd")]
            if "squid" in a.servers:
                noauth["squid"] = self.run.launch(Squid(self.run.work, self.run.backend, None))
                cases.append(("squid-negotiate", "squid"))
            base_t = {k: self.target(v) for k, v in noauth.items()}
            for family, t in base_t.items():
                self.run.check(t, f"{family} no-auth")
            # The no-auth servers get the same requests, tokens included (they are not checked).
            spare = self.maker.tokens(CONNECTIONS * 4)
            self.check_client(noauth["httpd"], base_t["httpd"], spare)
            for kind, family in cases:
                server = self.run.launch(self.server(kind))
                try:
                    t = self.target(server)
                    try:
                        self.probe(kind, t)
                    except Exception as e:
                        self.rows.append(Row(LABELS[kind], "cold", note=f"error: {e}".splitlines()[0][:160]))
                        progress(f"negotiate {kind}: {e}")
                        continue
                    for mode in ("cold", "warm"):
                        row = Row(LABELS[kind], mode)
                        self.rows.append(row)
                        try:
                            self.paired(row, server, t, noauth[family], base_t[family], spare)
                        except Exception as e:  # one broken row must not lose the section
                            row.note = f"error: {e}".splitlines()[0][:160]
                            progress(f"negotiate {kind} {mode}: {e}")
                finally:
                    self.run.retire(server)
            self.basic_against_kdc(base_t["httpd"])
        finally:
            for server in noauth.values():
                self.run.retire(server)
            self.maker.stop()

    def check_client(self, server, t: Target, spare: Path) -> None:
        """The load client must not be what limits a row: on the no-auth httpd it
        should make what wrk makes (3 alternating 1-second runs of each)."""
        ours, theirs = [], []
        for _ in range(3):
            theirs.append(self.run.wrk.run(t, 1).rps)
            ours.append(self.slice(server, t, "warm", spare, True, 1.0).rps)
        self.client_check = (f"On the no-auth httpd, `negotiate_load` (warm) made {fmt_rps(statistics.median(ours))} "
                             f"requests/s and wrk ({self.run.wrk.threads} threads, {self.run.wrk.connections} "
                             f"connections) {fmt_rps(statistics.median(theirs))} (medians of 3 alternating 1-second "
                             "runs)" + (": the client is not what limits the rows." if statistics.median(ours)
                                        >= 0.95 * statistics.median(theirs) else
                                        ": **slower than wrk**, so the rows' absolute rates are partly the client's."))
        progress(self.client_check)

    def basic_against_kdc(self, base_t: Target) -> None:
        """Basic passwords checked against the KDC: mod_auth_proxy's `kerberos`
        provider (where this build has it) and mod_auth_gssapi's GssapiBasicAuth,
        wrk paired with the no-auth httpd, with the AS exchanges the KDC logged."""
        a = self.run.args
        creds = basic("alice", USERS["alice"])
        principal = f"alice@{self.maker.kdc.realm}"
        for kind, label in (("proxy-kerberos", "mod_auth_proxy, `AuthProxyProvider kerberos`"),
                            ("gssapi-basic", "mod_auth_gssapi, `GssapiBasicAuth On`")):
            server = self.run.front(kind, self.maker.keytab)
            test = server.configtest()
            if test.returncode != 0:
                reason = (test.stderr or test.stdout).strip().splitlines()
                self.basic_rows.append(f"| {label} | not measured: this build refuses the configuration "
                                       f"(`{reason[-1][:100] if reason else test.returncode}`…) | – | – | – |")
                progress(f"negotiate {label}: not measured (configtest failed)")
                continue
            self.run.launch(server)
            try:
                t = Target(server.port, self.target(server).path, "Proxy-Authorization", creds)
                before = self.maker.kdc.as_requests(principal)
                self.run.check(t, label)
                first = self.maker.kdc.as_requests(principal) - before
                if a.warmup > 0:
                    self.run.wrk.run(t, a.warmup)
                measured = self.maker.kdc.as_requests(principal)
                r, paired = self.run.wrk.paired(t, Target(base_t.port, base_t.path, "Proxy-Authorization", creds),
                                                a.duration, 0)
                after = self.maker.kdc.as_requests(principal)
                whole, measured = after - before, after - measured
                ratio = f" ({fmt_ratio(r.rps / paired)}×)" if paired else ""
                self.basic_rows.append(f"| {label} | {fmt_rps(r.rps)}{ratio} | {first} | {whole:,} | "
                                       f"{measured / max(1, r.requests) * 1000:,.1f} |"
                                       + (f" ⚠{r.bad} failed" if r.bad else ""))
                progress(f"negotiate {label}: {r.rps:,.0f} req/s (paired no-auth {paired:,.0f}), AS exchanges: "
                         f"{first} for the first request, {whole} for the whole row")
            except Exception as e:
                self.basic_rows.append(f"| {label} | error: {str(e).splitlines()[0][:120]} | – | – | – |")
                progress(f"negotiate {label}: {e}")
            finally:
                self.run.retire(server)

    def server(self, kind: str):
        keytab = self.maker.keytab
        if kind == "squid-negotiate":
            return Squid(self.run.work, self.run.backend, None,
                         negotiate_program=f"{SQUID_HELPER} -k {keytab} -s {SERVICE}@{self.maker.kdc.realm}")
        return self.run.front(kind, keytab)

    def target(self, server) -> Target:
        kind = "squid" if isinstance(server, Squid) else "noauth"
        return self.run.targets(server, kind, None)["forward"]

    def probe(self, kind: str, t: Target) -> None:
        """A request without a token must get 407 + Negotiate; one with a token 200."""
        conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=30)
        try:
            conn.request("GET", t.path)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            schemes = [v.split(" ")[0] for k, v in resp.getheaders() if k.lower() == "proxy-authenticate"]
        finally:
            conn.close()
        self.challenges[kind] = f"{status} with " + ", ".join(f"`Proxy-Authenticate: {s}`" for s in schemes)
        if status != 407 or "Negotiate" not in schemes:
            raise RuntimeError(f"{kind}: no token got {status} {schemes}, not 407 Negotiate")
        ok = Target(t.port, t.path, "Proxy-Authorization", negotiate_header("127.0.0.1", self.maker.ccache))
        self.run.check(ok, f"{kind} with a token")

    def paired(self, row: Row, server, t: Target, base, base_t: Target, spare: Path) -> None:
        """Warm-up, then slices of the row and of its no-auth pair alternating (A B A B ...)."""
        a = self.run.args
        slices = max(2, round(a.duration))
        cold = row.mode == "cold"
        per_slice = COLD_SLICE if cold else CONNECTIONS
        warmup = max(1, round(a.warmup))
        # Every token of the row is made before its first slice (a token lives CLOCKSKEW seconds).
        files = [self.maker.tokens(per_slice) for _ in range(slices + warmup)]
        seconds = 60.0 if cold else 1.0
        requests = per_slice if cold else 0
        for f in files[:warmup]:
            self.slice(server, t, row.mode, f, False, seconds, requests)
            self.slice(base, base_t, row.mode, spare, True, seconds, requests)
        for f in files[warmup:]:
            row.mine.append(self.slice(server, t, row.mode, f, False, seconds, requests))
            row.base.append(self.slice(base, base_t, row.mode, spare, True, seconds, requests))
        failed = sum(s.failed for s in row.mine)
        if failed:
            statuses: dict = {}
            for s in row.mine:
                for k, v in s.statuses.items():
                    statuses[k] = statuses.get(k, 0) + v
            row.note = f"{failed} failed requests (statuses {statuses})"
        progress(f"negotiate {row.label} {row.mode}: {row.median('mine').rps:,.0f} req/s "
                 f"({row.ratio():.2f}× no-auth), {Row.cpu_us(row.mine):.0f} µs CPU/request "
                 f"(no-auth {Row.cpu_us(row.base):.0f})" + (f"; {row.note}" if row.note else ""))

    # -- the report
    def markdown(self) -> str:
        a = self.run.args
        slices = max(2, round(a.duration))
        out = ["## Kerberos single sign-on (Negotiate) on a forward proxy: cold and warm, paired with no auth", "",
               f"A real MIT KDC (realm {self.maker.kdc.realm}, started by the benchmark) holds alice and the "
               f"proxy's service `{SERVICE}`; every server reads its key from the same keytab and keeps a replay "
               f"cache (the acceptors' default, kept for the clock skew, {CLOCKSKEW} s). Tokens are SPNEGO "
               "tokens for alice made beforehand with python3-gssapi from one TGT and one service ticket "
               f"({self.maker.made:,} tokens at {self.maker.rate():,.0f} tokens/s on this machine), each sent "
               "once: a replayed token is refused. Requests are absolute-URI GETs of the backend's 256-byte "
               "file through each server's forward-proxy port (mod_auth_gssapi answers 407 only there). The "
               "servers: mod_auth_proxy with `AuthType ProxyNegotiate` and `AuthProxyKeytab` (read by the parent "
               "at start), at its defaults (`AuthProxyConnectionBound On`, the shared replay cache, its throttle "
               "on); Debian's mod_auth_gssapi with `GssapiCredStore keytab:…` and `GssapiConnectionBound On` on "
               "the same httpd (event MPM, 2 processes × 25 threads); Squid with `auth_param negotiate program "
               f"negotiate_kerberos_auth -k … -s {SERVICE}@…`, 5 helpers, `keep_alive on`.", "",
               "The client is `build/negotiate_load` (bench/micro/negotiate_load.cpp): one thread per connection, "
               f"{CONNECTIONS} connections, one request in flight on each. *Cold*: every request on a new "
               "connection with a fresh token, as `curl --proxy-negotiate` sends it; "
               f"{COLD_SLICE:,} requests per slice. *Warm*: each connection's first request carries a token and "
               "must get 200; then, timed for 1 s, requests **without** `Proxy-Authorization` on the same "
               "connections, as a browser sends them to a proxy that binds the user to the connection "
               "(mod_auth_proxy's `AuthProxyConnectionBound On`, its default; `GssapiConnectionBound On`; Squid "
               "binds Negotiate to the connection by itself). Each row is measured **paired**: after a warm-up "
               f"slice, slices of the row and of the same server without authentication (httpd rows with a "
               f"no-auth httpd, Squid with a no-auth Squid) alternate, {slices} of each, in the same client mode "
               "with the same requests (tokens included: the no-auth servers ignore them). req/s is the row's "
               "median slice and the median of the pairs' ratios; CPU per request is the server's CPU time "
               "(utime + stime from `/proc/PID/stat` of all its processes: httpd's parent and children, Squid "
               "and its helpers) over all slices divided by their requests, beside the same for its no-auth "
               "pair. The client, the backend and the KDC are not counted. " + self.client_check, "",
               "| Server | Case | req/s (× no-auth, paired) | server CPU per request (× no-auth) | "
               "p50 / p99 latency | no-auth pair: req/s, CPU per request |",
               "|---|---|---|---|---|---|"]
        below = []
        for row in self.rows:
            mode = "cold: a new connection and token per request" if row.mode == "cold" else \
                "warm: a token once per connection, then none"
            if not row.mine:
                out.append(f"| {row.label} | {mode} | {row.note or 'n/a'} | – | – | – |")
                continue
            m, ratio = row.median("mine"), row.ratio()
            cpu, base_cpu = Row.cpu_us(row.mine), Row.cpu_us(row.base)
            cell = f"{fmt_rps(m.rps)} ({fmt_ratio(ratio)}×)"
            if row.label.startswith("mod_auth_proxy") and row.mode == "warm" and ratio < 0.95:
                cell = f"**{cell}**"
                below.append(ratio)
            out.append(f"| {row.label} | {mode} | {cell} | {cpu:,.0f} µs ({cpu / base_cpu:.2f}×) | "
                       f"{m.p50_ms:.2f} / {m.p99_ms:.2f} ms | {fmt_rps(row.median('base').rps)}, "
                       f"{base_cpu:,.0f} µs |" + (f" ⚠ {row.note}" if row.note else ""))
        out.append("")
        if self.challenges:
            out.append("Without a token each server answered " + "; ".join(
                f"{LABELS[k].split(',')[0]}: {v}" for k, v in self.challenges.items()) + ".")
            out.append("")
        warm = [r for r in self.rows if r.label.startswith("mod_auth_proxy") and r.mode == "warm" and r.mine]
        if warm:
            out.append("mod_auth_proxy's warm row is **below** the 0.95 × no-auth target." if below else
                       "mod_auth_proxy's warm row meets the ≥ 0.95 × no-auth target.")
            out.append("")
        if self.basic_rows:
            out += ["### Basic passwords checked against the KDC (forward proxy)", "",
                    "alice's Kerberos password sent as `Proxy-Authorization: Basic` on every request; the server "
                    "asks the KDC (an AS exchange) and checks the ticket it gets with the keytab. wrk "
                    f"({self.run.wrk.threads} threads, {self.run.wrk.connections} keep-alive connections), paired "
                    f"with the no-auth httpd as above ({max(1, round(a.warmup))} s of warm-up, then 1-second slices "
                    f"alternating, {slices} of each). AS exchanges are the KDC log's `AS_REQ … ISSUE` lines for "
                    "alice: for the row's first request, for the whole row (first request, warm-up and slices), "
                    "and during the measured slices per 1,000 of their requests.", "",
                    "| Server | req/s (× no-auth, paired) | AS exchanges: first request | AS exchanges: whole row | "
                    "AS exchanges per 1,000 measured requests |",
                    "|---|---|---|---|---|"] + self.basic_rows + [""]
        return "\n".join(out)
