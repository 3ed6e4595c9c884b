"""Reload of a 1,000,000-user file under load: how long until every child
has the new index, and what the requests in flight see."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from harness import basic

from ..clients import Target, request_once
from ..matrix import PASSWORD, SIZES, STATIC, USER
from ..measure import load_events
from ..report import fmt_rps, progress
from ..run import Run
from ..servers import Server


def measure(run: Run) -> None:
    a = run.args
    users = max(a.sizes) if a.sizes else 1000000
    users = 1000000 if 1000000 in SIZES else users
    progress(f"== reload of a {users:,}-user file under load")
    src = run.files.path("bcrypt10", users)
    rdir = run.work / "reload"
    rdir.mkdir(exist_ok=True)
    os.chmod(rdir, 0o755)
    path = rdir / "users.htpasswd"
    shutil.copyfile(src, path)
    os.chmod(path, 0o644)
    server = run.launch(run.front("proxy", path, loglevel="warn auth_proxy:info"))
    lines = [f"## Reload of a {users:,}-user file ({src.stat().st_size / 1e6:.0f} MB, bcrypt cost 10) under load",
             ""]
    try:
        t = run.targets(server, "proxy", basic(USER, PASSWORD))["reverse"]
        run.check(t, "reload setup")
        loads = [e for e in load_events(server.log()) if e["pid"] == server.proc.pid and not e["reload"]]
        children = server.pids()[1:]
        # Changes at `spacing` and 2 x `spacing` + 2 s into the run; the run
        # lasts long enough for the second reload to finish inside it.
        seconds = round(3 * a.reload_spacing + 4)
        base = run.wrk.run(t, seconds)
        progress(f"reload baseline: {base.rps:,.0f} req/s, max {base.max_ms:.1f} ms, >50 ms: {base.over50}")

        wrk = run.wrk.start(t, seconds)
        t0 = time.time()
        events = []
        for at, how in ((a.reload_spacing, "touch"), (2 * a.reload_spacing + 2, "replace")):
            time.sleep(max(0.0, t0 + at - time.time()))
            events.append(change_and_wait(run, server, path, how, children))
            if time.time() > t0 + seconds:
                run.notes.append("The reload under load finished after the wrk run ended: "
                                 "raise --reload-spacing.")
        during = run.wrk.result(wrk)
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
        run.retire(server)
    run.sections_md.append("\n".join(lines))


def change_and_wait(run: Run, server: Server, path: Path, how: str, children: list[int]) -> dict:
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
            f.write(run.files.hash_line("sha", newuser, PASSWORD) + "\n")
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
