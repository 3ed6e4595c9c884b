"""Throughput with a warm cache: one user, last in the file, for every
server kind, hash format, file size and mode, against the same server
without authentication."""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path

from harness import basic

from ..clients import Target, WrkResult
from ..matrix import AUTH_PROXY_KINDS, FORMATS, LABELS, PASSWORD, THROTTLE_OFF, USER
from ..report import fmt_ratio, fmt_rps, progress
from ..run import Run
from ..servers import NCSA_AUTH, Server, Squid

# mod_auth_proxy's refusals: malformed, unknown user, unusable entry,
# mismatch, locked out, repeated failure.
REFUSAL_LINE = re.compile(r"APX0100[3567]|APX0101[23]")


def measure(run: Run) -> None:
    section = Throughput(run)
    section.measure()
    run.sections_md.append(section.markdown())


class Throughput:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.rows: dict = {}    # (mode, server, fmt, users) -> (block, WrkResult | str, paired no-auth rps)
        self.floor: dict = {}   # mode -> (WrkResult, paired no-auth rps)
        self.noauth: dict = {}  # "httpd"|"squid" -> the no-auth server, up through the whole section

    def server_for(self, kind: str, user_file: Path):
        """A (not yet started) authenticating server of a throughput row."""
        if kind == "squid":
            return Squid(self.run.work, self.run.backend, user_file)
        if kind == THROTTLE_OFF:
            return self.run.front("proxy", user_file, global_extra="AuthProxyThrottle Off")
        return self.run.front(kind, user_file)

    def start_noauth(self) -> None:
        """No-auth httpd (and Squid) stay up through the whole throughput section."""
        self.noauth = {"httpd": self.run.launch(self.run.front("noauth"))}
        if "squid" in self.run.args.servers:
            self.noauth["squid"] = self.run.launch(Squid(self.run.work, self.run.backend, None))
        self.noauth_targets = {k: self.run.targets(v, "squid" if k == "squid" else "noauth", None)
                               for k, v in self.noauth.items()}
        for k, ts in self.noauth_targets.items():
            for mode in self.run.args.modes:
                self.run.check(ts[mode], f"{k} no-auth {mode}")

    def measure_baselines(self, block: int) -> None:
        a = self.run.args
        for kind, ts in self.noauth_targets.items():
            for mode in a.modes:
                r = self.run.wrk.measure(ts[mode], a.duration, a.warmup)
                self.run.baselines.setdefault((kind, mode), []).append((block, r.rps))
                progress(f"no-auth {kind:5} {mode:7}: {r.rps:,.0f} req/s")

    def paired(self, t: Target, base: Target) -> tuple[WrkResult, float]:
        a = self.run.args
        return self.run.wrk.paired(t, base, a.duration, a.warmup)

    def measure_row(self, t: Target, latency: float) -> WrkResult:
        """A slow row (one request alone takes > 50 ms: the hash or the file
        scan dominates) gets no warm-up, whose unfinished requests would eat
        into the measurement, and a longer run, so that every connection
        completes a few requests."""
        a = self.run.args
        if latency <= 0.05:
            return self.run.wrk.measure(t, a.duration, a.warmup)
        return self.run.wrk.measure(t, max(a.duration, min(20, round(8 * latency))), 0)

    def measure(self) -> None:
        a = self.run.args
        progress("== throughput (warm cache, one user, last in the file)")
        self.start_noauth()
        self.measure_baselines(0)
        creds = basic(USER, PASSWORD)
        if "proxy" in a.servers:
            server = self.run.launch(self.run.front("floor"))
            try:
                ts = self.run.targets(server, "floor", creds)
                for mode in a.modes:
                    self.run.check(ts[mode], f"floor {mode}")
                    r, paired = self.paired(ts[mode], self.noauth_targets["httpd"][mode])
                    self.floor[mode] = (r, paired)
                    progress(f"{mode:7} floor (mod_authn_anon): {r.rps:,.1f} req/s (paired no-auth {paired:,.0f})")
            finally:
                self.run.retire(server)
        for block, users in enumerate(a.sizes, start=1):
            for fmt, kinds in self.throughput_rows():
                path = self.run.files.path(fmt, users)
                if "squid" in kinds and self.run.squid_reverse_header is None:
                    self.run.probe_squid_reverse(path)
                for kind in kinds:
                    if kind == "squid" and fmt == "sha":
                        # basic_ncsa_auth has no {SHA} support: prove it rather than assume.
                        self.squid_sha_check(path)
                        continue
                    server = self.run.launch(self.server_for(kind, path))
                    try:
                        ts = self.run.targets(server, kind, creds)
                        for mode in a.modes:
                            key = (mode, kind, fmt, users)
                            try:
                                latency = self.run.check(ts[mode], f"{kind} {fmt} {users} {mode}")
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
                        self.run.retire(server)
            self.measure_baselines(block)
        for server in self.noauth.values():
            self.run.retire(server)

    def table_rows(self) -> list[tuple[str, list[str]]]:
        """(server kind, formats) in the order of the throughput table: the
        throttle-off reference row right after mod_auth_proxy's."""
        a = self.run.args
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
        a = self.run.args
        off = a.throttle_off if "proxy" in a.servers else []
        fmts = a.formats + [f for f in off if f not in a.formats]
        rows = []
        for fmt in fmts:
            kinds = list(a.servers) if fmt in a.formats else []
            if fmt in off:
                kinds.insert(kinds.index("proxy") + 1 if "proxy" in kinds else 0, THROTTLE_OFF)
            rows.append((fmt, kinds))
        return rows

    def check_no_refusals(self, server: Server, what: str) -> None:
        """The throughput rows send only the right password: a refusal in the
        log (unknown user, mismatch, repeat, lockout) means the row measured
        something else, and with the throttle on it could lock the client out."""
        refused = REFUSAL_LINE.findall(server.log())
        if refused:
            note = (f"⚠ {what}: mod_auth_proxy logged {len(refused)} refused logins during the throughput row "
                    f"({', '.join(sorted(set(refused)))}): the row did not measure the warm path alone.")
            self.run.notes.append(note)
            progress(note)

    def squid_sha_check(self, path: Path) -> None:
        if any(k[1] == "squid" and k[2] == "sha" for k in self.rows):
            return
        out = subprocess.run([NCSA_AUTH, str(path)], input=f"{USER} {PASSWORD}\n", capture_output=True,
                             text=True, timeout=120).stdout.strip()
        for mode in self.run.args.modes:
            for users in self.run.args.sizes:
                self.rows[(mode, "squid", "sha", users)] = (0, "n/a", None)
        self.run.notes.append(f"Squid's basic_ncsa_auth does not support `{{SHA}}` entries: asked directly "
                              f"with the right password it answers `{out}`, so Squid {{SHA}} rows are n/a.")

    def baseline(self, kind: str, mode: str, block: int) -> float | None:
        """Mean of the no-auth runs just before and just after the block."""
        vals = [rps for b, rps in self.run.baselines.get((kind, mode), []) if b in (block - 1, block)]
        return statistics.mean(vals) if vals else None

    def markdown(self) -> str:
        a = self.run.args
        out = ["## Throughput, warm cache (requests/s, and × no-auth of the same server)", ""]
        out.append("One user, authenticated on every request with the same credentials, is the **last** line of the "
                   f"file. wrk, {self.run.wrk.threads} threads, {self.run.wrk.connections} keep-alive connections, "
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
                runs = self.run.baselines.get((kind, mode))
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
