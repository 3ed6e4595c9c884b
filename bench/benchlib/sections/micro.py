"""The warm path's cost in process (bench/micro/warm_path.cpp, Google
Benchmark), beside the CPU httpd spends on a whole proxied request."""

from __future__ import annotations

import json
import subprocess

from harness import basic

from .. import REPO
from ..matrix import PASSWORD, USER
from ..measure import cpu_seconds
from ..report import progress
from ..run import Run


def measure(run: Run) -> None:
    """The warm path's cost in process (bench/micro/warm_path.cpp, Google
    Benchmark), next to the CPU an httpd process spends on a proxied request."""
    a = run.args
    progress("== warm path in process")
    binary = REPO / "build" / "warm_path_bench"
    lines = ["## The warm path in process, beside a whole proxied request", ""]
    if not binary.exists():
        lines.append("`build/warm_path_bench` is missing (bench/run builds it where libbenchmark-dev is installed).")
        run.sections_md.append("\n".join(lines + [""]))
        return
    out = subprocess.run([str(binary), "--benchmark_format=json", "--benchmark_min_time=1",
                          "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    cases = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            cases[b["run_name"]] = b["cpu_time"]  # ns
    # httpd's own CPU per proxied request: parent + children, over a wrk run.
    path = run.files.path("bcrypt10", 1000000)
    cpu_per_request = {}
    for label, server in (("httpd, no auth", run.front("noauth")),
                          ("mod_auth_proxy (throttle on), bcrypt cost 10, 1,000,000 users",
                           run.front("proxy", path))):
        server = run.launch(server)
        try:
            kind = "noauth" if label.startswith("httpd") else "proxy"
            t = run.targets(server, kind, None if kind == "noauth" else basic(USER, PASSWORD))["reverse"]
            run.check(t, label)
            run.wrk.run(t, 1)
            pids = server.pids()
            cpu0 = cpu_seconds(pids)
            r = run.wrk.run(t, a.duration)
            cpu = cpu_seconds(pids) - cpu0
            cpu_per_request[label] = cpu / max(1, r.requests) * 1e9  # ns
            progress(f"micro: {label}: {r.rps:,.0f} req/s, {cpu_per_request[label] / 1000:.1f} us CPU per request")
        finally:
            run.retire(server)
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
    run.sections_md.append("\n".join(lines))
