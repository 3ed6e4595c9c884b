"""Progress lines on stderr, number formats of the tables, and the report."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import HTTPD_BIN

from .matrix import STATIC_BODY


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def report(run, started: float, load_before: str) -> str:
    """The Markdown report: what ran where, the run's notes, then each section's tables in the order they ran."""
    return "\n".join(["\n".join(header(run, started, load_before))] + run.sections_md) + "\n"


def header(run, started: float, load_before: str) -> list[str]:
    a = run.args
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
        f"{(time.time() - started) / 60:.1f} minutes; module {run.module_desc}.",
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
    if run.notes:
        head += [f"- {n}" for n in run.notes]
    head.append("")
    return head
