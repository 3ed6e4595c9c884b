"""A distributed guess flood: wrong bcrypt-12 guesses for one user, each
from its own IPv6 /48 (far under any throttle limit), while a cached user's
latency is measured and a legitimate user logs in cold."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from harness import basic, free_port

from ..clients import Target, request_once
from ..matrix import PASSWORD, SERVERS, STATIC, USER
from ..report import fmt_ms, fmt_rps, progress
from ..run import Run

PREFIX = "2001:db8:8000::/33"      # flood_client.py's sources: 32,768 /48s
TARGET_USER = "bob"                 # whom the flood guesses for
COLD_USER, COLD_PASSWORD = "carol", "carol-cold-secret"
FLOOD_CLIENT = Path(__file__).resolve().parent.parent / "flood_client.py"
KINDS = ("proxy", "stock", "socache")
WORKER_THREADS = 75                 # per process, 2 processes: Debian's default MaxRequestWorkers of 150

LATENCY_LUA = r"""
wrk.path = "%s"
function done(summary, latency, requests)
  io.write(string.format("FLOOD requests=%%d p50_us=%%d p95_us=%%d p99_us=%%d errors=%%d\n",
    summary.requests, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""

STATUS_BLOCK = """<Location "/server-status">
  SetHandler server-status
  Require ip 127.0.0.1
</Location>"""


def measure(run: Run) -> None:
    Flood(run).measure()


class Sources:
    """PREFIX routed to lo and bindable while the section runs; both undone afterwards."""

    def __enter__(self) -> "Sources":
        self.sysctl = Path("/proc/sys/net/ipv6/ip_nonlocal_bind")
        self.before = self.sysctl.read_text().strip()
        self._route("del")
        added = self._route("add")
        if added.returncode != 0:
            raise RuntimeError(f"cannot route {PREFIX} to lo (needs root and iproute2): {added.stderr.strip()}")
        self.sysctl.write_text("1\n")
        return self

    def __exit__(self, *exc) -> None:
        self.sysctl.write_text(self.before + "\n")
        self._route("del")

    @staticmethod
    def _route(action: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "-6", "route", action, "local", PREFIX, "dev", "lo"],
                              capture_output=True, text=True)


class Flood:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.next_block = 0         # each guess of the whole section from a /48 never used before

    def measure(self) -> None:
        a = self.run.args
        sizes, seconds = a.flood_sizes, a.flood_seconds
        progress(f"== flood: {', '.join(map(str, sizes))} concurrent wrong bcrypt-12 guesses, each from its own /48")
        path = self.user_file()
        lines = [f"## Guess flood: a cached user while {' and '.join(map(str, sizes))} concurrent wrong "
                 "bcrypt-12 guesses run (reverse proxy)", "",
                 f"The user file holds three bcrypt cost-12 users. {USER} is the measured user: one wrk client, one "
                 f"keep-alive connection, requests back to back for {seconds:g} s, her credentials verified once "
                 "before (mod_auth_proxy and mod_authn_socache cache them; mod_authn_file verifies every request). "
                 f"Meanwhile a separate process sends wrong passwords for {TARGET_USER} from N threads, each guess on "
                 f"a new connection from a new IPv6 /48 of {PREFIX} routed to lo (`ip -6 route add local` and "
                 "`net.ipv6.ip_nonlocal_bind=1`), so that no address comes near a throttle limit. One second into "
                 f"the flood, a user of its own ({COLD_USER}16, {COLD_USER}64) logs in for the first time (a new connection, her right password; "
                 "mod_auth_proxy may answer 503 + Retry-After, and she tries again after it): *cold login* is the "
                 "time to her 200. Each httpd has 150 workers (2 processes × 75 threads), Debian's default "
                 "`MaxRequestWorkers`; the guessers run at nice 19, standing in for machines that are not the "
                 "server's.", "",
                 "| Server | Flood | p50 | p95 | p99 | req/s | vs idle (p95, req/s) | cold login | guesses answered |",
                 "|---|---|---|---|---|---|---|---|---|"]
        notes: list[str] = []
        with Sources():
            for kind in KINDS:
                if kind in a.servers:
                    lines += self.rows(kind, path, sizes, seconds, notes)
        lines.append("")
        lines += [f"{n}\n" for n in notes]
        self.run.sections_md.append("\n".join(lines))

    def user_file(self) -> Path:
        files = self.run.files
        p = files.dir / "flood.htpasswd"
        if not p.exists():
            cold = [(f"{COLD_USER}{n}", COLD_PASSWORD) for n in self.run.args.flood_sizes]
            p.write_text("".join(files.hash_line("bcrypt12", u, pw) + "\n" for u, pw in
                                 [(USER, PASSWORD), (TARGET_USER, "bob-real-secret")] + cold))
            p.chmod(0o644)
        return p

    def rows(self, kind: str, path: Path, sizes: list[int], seconds: float, notes: list[str]) -> list[str]:
        port6 = free_port()
        # Debian's default number of workers (MaxRequestWorkers 150), here 2 processes x 75 threads.
        server = self.run.launch(self.run.front(kind, path, global_extra=f"Listen [::1]:{port6}\n{STATUS_BLOCK}",
                                                extra_modules=["status", "authz_host"], threads=WORKER_THREADS))
        try:
            header = "Proxy-Authorization" if kind == "proxy" else "Authorization"
            alice = Target(server.port, f"/r/{STATIC}", header, basic(USER, PASSWORD))
            self.run.check(alice, f"{SERVERS[kind]}: {USER}")           # cached from here on, where there is a cache
            idle = self.latency(alice, seconds)
            rows = [self.row(kind, "idle", idle, idle, None, None)]
            progress(f"  {SERVERS[kind]} idle: p50 {fmt_ms(idle['p50'])}, p95 {fmt_ms(idle['p95'])}, "
                     f"{fmt_rps(idle['rps'])} req/s")
            for n in sizes:
                flood = self.start_flood(port6, n, seconds + 2, header)
                time.sleep(1)
                cold = self.cold_login(server.port, header, f"{COLD_USER}{n}")   # a user of her own per flood
                during = self.latency(alice, seconds)
                guesses = self.finish_flood(flood)
                rows.append(self.row(kind, f"{n} guesses", during, idle, cold, guesses))
                progress(f"  {SERVERS[kind]} {n} guesses: p50 {fmt_ms(during['p50'])}, p95 {fmt_ms(during['p95'])}, "
                         f"{fmt_rps(during['rps'])} req/s, cold login {cold}, guesses {guesses}")
            if kind == "proxy":
                notes.append(self.slots_note(server.port))
            return rows
        finally:
            self.run.retire(server)

    def latency(self, t: Target, seconds: float) -> dict:
        script = self.run.work / "wrk" / f"flood-{time.monotonic_ns()}.lua"
        script.parent.mkdir(exist_ok=True)
        script.write_text(LATENCY_LUA % t.path)
        out = subprocess.run(["wrk", "-t1", "-c1", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                              "-s", str(script), "-H", f"{t.header}: {t.credentials}", f"http://127.0.0.1:{t.port}/"],
                             capture_output=True, text=True).stdout
        m = re.search(r"FLOOD requests=(\d+) p50_us=(\d+) p95_us=(\d+) p99_us=(\d+) errors=(\d+)", out)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not m or not rps:
            raise RuntimeError(f"wrk failed: {out}")
        if int(m.group(5)):
            progress(f"  WARNING: {m.group(5)} of {m.group(1)} measured requests failed")
        return {"p50": int(m.group(2)) / 1000, "p95": int(m.group(3)) / 1000, "p99": int(m.group(4)) / 1000,
                "rps": float(rps.group(1)), "failed": int(m.group(5))}

    def start_flood(self, port6: int, threads: int, seconds: float, header: str) -> subprocess.Popen:
        first, self.next_block = self.next_block, self.next_block + 8192     # far more than one flood sends
        return subprocess.Popen([sys.executable, str(FLOOD_CLIENT), str(port6), str(threads), str(seconds),
                                 header, TARGET_USER, str(first)], stdout=subprocess.PIPE, text=True)

    @staticmethod
    def finish_flood(proc: subprocess.Popen) -> dict:
        out, _ = proc.communicate(timeout=300)
        return json.loads(out.strip().splitlines()[-1])

    @staticmethod
    def cold_login(port: int, header: str, user: str) -> str:
        """Time from the first try to the 200, retrying after a 503's Retry-After."""
        t = Target(port, f"/r/{STATIC}", header, basic(user, COLD_PASSWORD))
        started, tries = time.monotonic(), 0
        while True:
            tries += 1
            status, headers = request_once(t)
            if status == 200:
                took = (time.monotonic() - started) * 1000
                return fmt_ms(took) + ("" if tries == 1 else f" ({tries} tries)")
            if status != 503 or tries == 10:
                return f"{status} after {tries} tries"
            time.sleep(float(headers.get("retry-after", "1")))

    def row(self, kind: str, flood: str, r: dict, idle: dict, cold: str | None, guesses: dict | None) -> str:
        versus = "–" if r is idle else (f"{r['p95'] / idle['p95']:.2f}× p95, "
                                         f"{r['rps'] / idle['rps']:.2f}× req/s" if idle["p95"] and idle["rps"] else "–")
        answered = "–"
        if guesses:
            answered = ", ".join(f"{k}: {v:,}" for k, v in sorted(guesses["statuses"].items()))
        return (f"| {SERVERS[kind]} | {flood} | {fmt_ms(r['p50'])} | {fmt_ms(r['p95'])} | {fmt_ms(r['p99'])} | "
                f"{fmt_rps(r['rps'])} | {versus} | {cold or '–'} | {answered} |")

    @staticmethod
    def slots_note(port: int) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/server-status?auto")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        fields = dict(re.findall(r"^(AuthProxyVerify\w+): (\S+)$", body, re.M))
        if not fields:
            return "mod_auth_proxy's server-status did not show its verification slots."
        return ("mod_auth_proxy's verification slots after its floods (server-status): limit "
                f"{fields.get('AuthProxyVerifySlots', '?')} (`AuthProxyVerifyLimit`'s default on this machine), "
                f"peak in use {fields.get('AuthProxyVerifySlotsPeak', '?')}, "
                f"{fields.get('AuthProxyVerifyWaits', '?')} requests waited "
                f"({fields.get('AuthProxyVerifyWaitSeconds', '?')} s in all), "
                f"{fields.get('AuthProxyVerifyShed', '?')} shed with 503 + Retry-After.")
