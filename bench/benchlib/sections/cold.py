"""A cold cache: many distinct users round-robin, with the hash
verifications each server runs until every user is cached."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from harness import basic

from ..clients import ConnPool
from ..matrix import COLD_PASSWORD, SERVERS
from ..measure import VerifyCounter, cpu_seconds
from ..report import fmt_rps, progress
from ..run import Run
from ..servers import Squid


def measure(run: Run) -> None:
    Cold(run).measure()


class Cold:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.notes: list[str] = []                 # the lines under the table
        self.converged_rps: float | None = None   # mod_auth_proxy's round-robin once no user needs a verification
        self._hash_cpu: float | None = None       # CPU seconds of one bcrypt-10 verification, for estimates

    def measure(self) -> None:
        a = self.run.args
        n = a.cold_users
        progress(f"== cold cache: {n} distinct users, bcrypt cost 10, round-robin")
        path, names = self.run.files.cold(n)
        creds = [basic(u, COLD_PASSWORD) for u in names]
        lines = [f"## Cold cache: {n:,} distinct users round-robin (bcrypt cost 10, reverse proxy)", ""]
        counter = VerifyCounter(self.run.module)
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
                     f"its 8 connections, in {self.run.args.duration:g}-second slices until a slice needs no hash "
                     "verification (every user is cached in every child that sees it).")
        lines.append("")
        lines.append("| Server | Run | Requests | Time | req/s | Hash verifications |")
        lines.append("|---|---|---|---|---|---|")
        try:
            if "proxy" in a.servers:
                lines += self.httpd_rows("proxy", path, names, creds, counter)
                runs = [r for _, r in self.run.baselines.get(("httpd", "reverse"), [])]
                if self.converged_rps and runs:
                    base = statistics.median(runs)
                    self.notes.append(
                        f"Once every user is cached where it lands, {n:,} users round-robin run at "
                        f"{fmt_rps(self.converged_rps)} req/s, {self.converged_rps / base:.2f} × the median no-auth "
                        f"reverse throughput of the throughput section ({fmt_rps(base)}; not paired).")
            if "stock" in a.servers:
                lines += self.httpd_rows("stock", path, names, creds, counter)
            if "squid" in a.servers:
                lines += self.squid_rows(path, names, creds)
        finally:
            counter.close()
        lines.append("")
        lines += [f"{n}\n" for n in self.notes]
        self.run.sections_md.append("\n".join(lines))

    def httpd_rows(self, kind: str, path: Path, names, creds, counter: VerifyCounter) -> list[str]:
        a = self.run.args
        label = SERVERS[kind]
        server = self.run.launch(self.run.front(kind, path))
        rows = []
        try:
            rev = self.run.targets(server, kind, None)["reverse"]
            header = "Proxy-Authorization" if kind == "proxy" else "Authorization"
            pids = server.pids()
            if kind == "proxy":
                pool = ConnPool(rev.port, 8)
                try:
                    for pass_name, shift in (("pass 1 (cold)", 0), ("pass 2 (same connections)", 0),
                                       ("pass 3 (shifted connections)", 1)):
                        cpu0 = cpu_seconds(pids)
                        probe = counter.start(pids)
                        elapsed = pool.pass_(rev.path, header, creds, shift)
                        count = counter.finish(probe)
                        cpu = cpu_seconds(pids) - cpu0
                        rows.append(f"| {label} | {pass_name} | {len(creds):,} | {elapsed:.2f} s | "
                                    f"{len(creds) / elapsed:,.0f} | {self.verif_text(count, cpu)} |")
                        progress(f"cold {kind} {pass_name}: {elapsed:.2f} s, verifications {count} (cpu {cpu:.2f} s)")
                    spread = pool.process_spread(rev.port, pids)
                finally:
                    pool.close()
                if spread:
                    self.notes.append(
                        f"The 8 client connections were served by the httpd children as {spread}. "
                        f"mod_auth_proxy's credential cache is one table in shared memory for all children, so "
                        f"a user verified in one child is a cache hit in the other: the shifted pass, which moves "
                        f"users to other connections (and children), should need no verification at all.")
            # wrk cycles through all users over its 8 connections (any child):
            # slices of `duration` seconds until one needs no verification at all.
            rot = [(header, c) for c in creds]
            for slice_no in range(1, 100):
                probe = counter.start(pids)
                cpu1 = cpu_seconds(pids)
                r = self.run.wrk.run(rev, a.duration, rot)
                count = counter.finish(probe)
                cpu = cpu_seconds(pids) - cpu1
                verified = count if count is not None else self.verif_estimate(cpu)
                start, end = (slice_no - 1) * a.duration, slice_no * a.duration
                row = (f" | {r.requests:,} | {a.duration:g} s | {fmt_rps(r.rps)} | {self.verif_text(count, cpu)} |"
                       + (f" ⚠{r.bad} failed" if r.bad else ""))
                progress(f"cold {kind} round-robin {start:g}-{end:g} s: {r.rps:,.1f} req/s, verifications {count}")
                if slice_no == 1:
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
        finally:
            self.run.retire(server)
        return rows

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
            h = self.run.files.hash_line("bcrypt10", "cold", COLD_PASSWORD).split(":", 1)[1]
            t0 = time.process_time()
            for _ in range(5):
                crypt.crypt(COLD_PASSWORD, h)
            self._hash_cpu = (time.process_time() - t0) / 5
        return max(0.0, cpu / self._hash_cpu - 0.2)

    def squid_rows(self, path: Path, names, creds) -> list[str]:
        a = self.run.args
        label = SERVERS["squid"]
        if self.run.squid_reverse_header is None:
            self.run.probe_squid_reverse(path)
        sq = self.run.launch(Squid(self.run.work, self.run.backend, path))
        rows = []
        try:
            rev = self.run.targets(sq, "squid", None)["reverse"]
            header = self.run.squid_reverse_header or "Authorization"
            pool = ConnPool(rev.port, 8)
            try:
                for pass_name, shift in (("pass 1 (cold)", 0), ("pass 2 (same connections)", 0),
                                   ("pass 3 (shifted connections)", 1)):
                    elapsed = pool.pass_(rev.path, header, creds, shift)
                    rows.append(f"| {label} | {pass_name} | {len(creds):,} | {elapsed:.2f} s | "
                                f"{len(creds) / elapsed:,.0f} | (helper, not counted) |")
                    progress(f"cold squid {pass_name}: {elapsed:.2f} s")
            finally:
                pool.close()
            rot = [(header, c) for c in creds]
            if a.warmup > 0:
                self.run.wrk.run(rev, a.warmup, rot)
            r = self.run.wrk.run(rev, a.duration, rot)
            rows.append(f"| {label} | wrk round-robin, {a.duration:g} s after {a.warmup:g} s warm-up | "
                        f"{r.requests:,} | {a.duration:g} s | {fmt_rps(r.rps)} | (helper, not counted) |")
        finally:
            self.run.retire(sq)
        return rows
