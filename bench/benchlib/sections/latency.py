"""Latency of single requests (unknown user, wrong password, right password
uncached and cached) against mod_auth_proxy and stock httpd, with
mod_auth_proxy's hash verifications per request from its debug log."""

from __future__ import annotations

import random
import re
import statistics
import time

from harness import basic

from ..clients import KeepAliveClient
from ..matrix import FILLER_PASSWORD, FORMATS, PASSWORD, USER
from ..report import fmt_ms, fmt_times, p90, progress
from ..run import Run
from ..userfiles import UserFiles

LATENCY_USERS = 1000
LATENCY_CASES = [  # key, row label of the latency table
    ("unknown", "unknown user (a new name each request)"),
    ("wrong", "wrong password (a new one each request)"),
    ("uncached", "right password, uncached (each user's first request)"),
    ("cached", "right password, cached"),
]
# mod_auth_proxy's debug line for each hash verification: dummy, mismatch, match.
VERIFY_LINE = re.compile(r"(APX01014|APX01015|APX01010): user ([^\s:]+)")


def measure(run: Run) -> None:
    a = run.args
    kinds = [k for k in ("proxy", "stock") if k in a.servers]
    if not kinds:
        return
    progress(f"== latency per request: {LATENCY_USERS:,} users, {', '.join(a.latency_formats)}")
    lines = intro()
    lines.append("| Hash | Case | mod_auth_proxy median | p90 | samples | verifications per request (debug log) | "
                 "stock median | p90 | samples |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    per_unknown = []
    for fmt in a.latency_formats:
        label = FORMATS[fmt][0]
        try:
            samples, verifs, connects = measure_format(run, fmt, kinds)
        except Exception as e:  # keep going: one broken format must not lose the run
            progress(f"latency {fmt}: {e}")
            lines.append(f"| {label} | error: {str(e).splitlines()[0][:100]} | | | | | | | |")
            continue
        lines += format_rows(label, samples, verifs)
        if "proxy" in kinds:
            per_unknown.append(f"**{verifs['unknown']:.2f}** ({label})")
        if any(c > 1 for c in connects.values()):
            run.notes.append(f"Latency, {label}: a server closed the keep-alive connection; the client "
                             f"reconnected outside the timed part (connections opened: {connects}).")
    lines.append("")
    if per_unknown:
        lines.append("Verifications per unknown-user request, mod_auth_proxy (APX01014 debug lines ÷ unknown-user "
                     "requests): " + ", ".join(per_unknown) + ". The ratio rows are what the time of a refusal "
                     "tells a client about whether the name exists: nothing if it reads 1.00×.")
        lines.append("")
    run.sections_md.append("\n".join(lines))


def intro() -> list[str]:
    """The heading, the setup and the cases."""
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


def format_rows(label: str, samples: dict, verifs: dict) -> list[str]:
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


def measure_format(run: Run, fmt: str, kinds: list[str]):
    """Samples (ms) per (server kind, case), mod_auth_proxy's hash
    verifications per request per case (from its debug log), and how many
    connections each client opened."""
    path = run.files.path(fmt, LATENCY_USERS)
    servers, clients = {}, {}
    try:
        for kind in kinds:
            if kind == "proxy":
                server = run.front(kind, path, loglevel="warn auth_proxy:debug",
                                   global_extra="AuthProxyThrottleExempt 127.0.0.1")
            else:
                server = run.front(kind, path)
            servers[kind] = run.launch(server)
            t = run.targets(servers[kind], kind, basic(USER, PASSWORD))["reverse"]
            clients[kind] = KeepAliveClient(t)
            clients[kind].expect(t.credentials, 200)  # fills mod_auth_proxy's cache for the cached case
        offset = len(servers["proxy"].log()) if "proxy" in servers else 0
        samples = rounds(run, fmt, clients)
        verifs = (verifications(run, servers["proxy"].log()[offset:], samples)
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
            run.retire(server)


def rounds(run: Run, fmt: str, clients: dict) -> dict[tuple[str, str], list[float]]:
    """--latency-samples rounds; each sends every case once to every
    server, and mod_auth_proxy's cached case its share of --latency-cached
    (stock has no cache: its cached case is as slow as the others), in a
    new random order, so that no case always follows the same one."""
    n, n_cached = run.args.latency_samples, run.args.latency_cached
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
                ms = clients[kind].expect(credentials(case, i), status)
                samples.setdefault((kind, case), []).append(ms)
        if (i + 1) % 5 == 0 or i + 1 == n:
            progress(f"latency {fmt}: {i + 1}/{n} rounds, {time.time() - started:.0f} s")
    return samples


def verifications(run: Run, log: str, samples: dict) -> dict[str, float]:
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
        run.notes.append(note)
        progress(note)
    return {case: counts[case] / max(1, len(samples.get(("proxy", case), []))) for case in counts}


def credentials(case: str, i: int) -> str:
    """The credentials of request i of a latency case (see LATENCY_CASES)."""
    if case == "unknown":
        return basic(f"ghost{i:05d}", f"guess-{i}")
    if case == "wrong":
        return basic(USER, f"wrong-{i}")
    if case == "uncached":  # filler users from the end of the file, each once
        return basic(UserFiles.filler(LATENCY_USERS - 2 - i), FILLER_PASSWORD)
    return basic(USER, PASSWORD)
