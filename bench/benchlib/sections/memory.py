"""The server's memory with a 1,000,000-user file, against the same server
with a 1-user file: after start, after a reload, and settled."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from harness import basic

from ..matrix import FORMATS, PASSWORD, USER
from ..measure import index_cache_kb, load_events, memory_kb
from ..report import progress
from ..run import Run


def measure(run: Run) -> None:
    a = run.args
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
    small_dir = run.work / "memory"
    small_dir.mkdir(exist_ok=True)
    os.chmod(small_dir, 0o755)
    for mpm in a.mem_mpms:
        for fmt in a.mem_formats:
            small = small_dir / f"{fmt}-1.htpasswd"
            small.write_text(run.files.hash_line(fmt, USER, PASSWORD) + "\n")
            os.chmod(small, 0o644)
            big = small_dir / f"{fmt}-{users}.htpasswd"
            shutil.copyfile(run.files.path(fmt, users), big)
            os.chmod(big, 0o644)
            size_kb = big.stat().st_size / 1024
            base = memory_of(run, mpm, small, reload=False)[0]
            loaded, after, settled, nproc = memory_of(run, mpm, big, reload=True)

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
    run.sections_md.append("\n".join(lines))


def memory_of(run: Run, mpm: str, path: Path, reload: bool):
    """(Rss, Pss) sums right after start, after every child reloaded, and
    12 s after the change (past the parent's maintenance tick)."""
    server = run.launch(run.front("proxy", path, mpm=mpm, loglevel="warn auth_proxy:info"))
    try:
        t = run.targets(server, "proxy", basic(USER, PASSWORD))["reverse"]
        for _ in range(16):  # fresh connections: spread over the children
            run.check(t, f"memory {mpm}")
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
            run.check(t, f"memory {mpm}")
        after = memory_kb(server.pids()) + (index_cache_kb(server.root),)
        time.sleep(max(0.0, changed + 12 - time.monotonic()))
        settled = memory_kb(server.pids()) + (index_cache_kb(server.root),)
        return loaded, after, settled, len(pids)
    finally:
        run.retire(server)
