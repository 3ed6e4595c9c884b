#!/usr/bin/python3
"""Side-by-side benchmark: mod_auth_proxy vs stock httpd authentication vs Squid.

Run through bench/run (which installs packages and builds the module first).
Everything runs on this machine on loopback ports: a static backend (a second
httpd serving a small file), the httpd under test (event MPM, 2 processes x 25
threads, LogLevel warn, no access log) or Squid, and wrk as the client with 8
keep-alive connections. Progress goes to stderr; the Markdown report goes to
stdout and to bench/results/latest.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from benchlib import REPO
from benchlib.matrix import FORMATS, MODES, SERVERS, SIZES
from benchlib.report import progress, report
from benchlib.run import Run
from benchlib.sections import SECTIONS, measure
from benchlib.sections.latency import LATENCY_USERS


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small subset for a smoke check (~4 min): {SHA} and bcrypt 10, 1,000 and 1,000,000 users, "
                        "2 s per cell, no warm-up, 10 latency samples (100 cached), 100 cold users, "
                        "memory under event only")
    p.add_argument("--servers", default=",".join(SERVERS), help=f"comma list of {','.join(SERVERS)}")
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma list of {','.join(FORMATS)}")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma list of user counts")
    p.add_argument("--modes", default=",".join(MODES), help="comma list of reverse,forward")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {','.join(SECTIONS)}")
    p.add_argument("--duration", type=float, default=5, help="seconds measured per cell (default 5)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of warm-up per cell (default 1)")
    p.add_argument("--throttle-off", default="bcrypt10",
                   help="formats of the throughput reference row \"mod_auth_proxy, throttle off\" "
                        "(every --sizes size, both modes; default bcrypt10; 'none' for no such row)")
    p.add_argument("--latency-formats", default="bcrypt10,bcrypt12", help="hash formats of the latency section")
    p.add_argument("--latency-samples", type=int, default=20,
                   help="latency: requests per server and case (default 20; mod_auth_proxy's cached case: "
                        "--latency-cached)")
    p.add_argument("--latency-cached", type=int, default=200,
                   help="latency: requests of mod_auth_proxy's cached case (default 200)")
    p.add_argument("--cold-users", type=int, default=1000, help="distinct users in the cold run (default 1000)")
    p.add_argument("--cold-converge", type=float, default=90,
                   help="seconds of round-robin after which the cold run stops waiting for the cache to fill")
    p.add_argument("--reload-spacing", type=float, default=3, help="seconds between reloads under load")
    p.add_argument("--flood-sizes", default="16,64", help="flood: concurrent wrong guesses of each run (default 16,64)")
    p.add_argument("--flood-seconds", type=float, default=10, help="flood: seconds each latency run lasts (default 10)")
    p.add_argument("--mem-mpms", default="event,prefork")
    p.add_argument("--mem-formats", default="bcrypt10,sha")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.md"), help="where the report goes")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, user files)")
    p.add_argument("--update", action="store_true",
                   help="keep the report already in --out and replace only the sections this run measured "
                        "(matched by their heading up to the first ':'), adding the rest at the end; "
                        "its header says which sections came from which run")
    a = p.parse_args(argv)
    explicit = {x.split("=")[0] for x in argv if x.startswith("--")}
    if a.quick:
        defaults = {"--formats": "sha,bcrypt10", "--sizes": "1000,1000000", "--duration": 2, "--warmup": 0,
                    "--latency-samples": 10, "--latency-cached": 100,
                    "--cold-users": 100, "--cold-converge": 20, "--mem-mpms": "event", "--mem-formats": "bcrypt10",
                    "--reload-spacing": 2}
        for opt, val in defaults.items():
            if opt not in explicit:
                setattr(a, opt[2:].replace("-", "_"), val)
    for name, allowed in (("servers", SERVERS), ("formats", FORMATS), ("modes", MODES), ("sections", SECTIONS),
                          ("mem_formats", FORMATS), ("mem_mpms", ["event", "worker", "prefork"]),
                          ("throttle_off", FORMATS), ("latency_formats", FORMATS)):
        vals = [v.strip() for v in str(getattr(a, name)).split(",") if v.strip() and v.strip() != "none"]
        bad = [v for v in vals if v not in allowed]
        if bad:
            p.error(f"--{name.replace('_', '-')}: unknown {bad}; choose from {list(allowed)}")
        setattr(a, name, vals)
    a.sizes = [int(x) for x in str(a.sizes).split(",") if x.strip()]
    a.flood_sizes = [int(x) for x in str(a.flood_sizes).split(",") if x.strip()]
    if not 1 <= a.latency_samples < LATENCY_USERS or a.latency_cached < 1:
        p.error(f"--latency-samples: 1 to {LATENCY_USERS - 1} (each uncached sample is a new user of the file); "
                "--latency-cached: at least 1")
    return a


def blocks(md: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A report's header lines, and its sections as (key, text): the key is
    the "## " heading up to its first ':'."""
    head, sections = [], []
    for line in md.rstrip("\n").split("\n"):
        if line.startswith("## "):
            sections.append((line.split(":", 1)[0], line + "\n"))
        elif sections:
            key, text = sections[-1]
            sections[-1] = (key, text + line + "\n")
        else:
            head.append(line)
    return head, sections


def merge_report(old: str, new: str) -> str:
    """@p old with the sections of @p new in place of those of the same heading (new ones at the end); the
    header is the old one, plus the new run's first lines, saying which sections it measured."""
    old_head, old_sections = blocks(old)
    new_head, new_sections = blocks(new)
    fresh = dict(new_sections)
    merged = [(k, fresh.pop(k, text)) for k, text in old_sections] + list(fresh.items())
    names = ", ".join(f"\"{k[3:]}\"" for k, _ in new_sections)
    run_lines = [line for line in new_head if line.startswith("- Run:") or line.startswith("- Machine:")]
    note = [f"- Sections {names} were measured again by a later run (`--update`):"] + \
           ["  " + line for line in run_lines]
    head = old_head[:1] + [""] + [line for line in old_head[1:] if line.strip()] + note + [""]
    return "\n".join(head) + "\n" + "".join(text if text.endswith("\n\n") else text + "\n"
                                          for _, text in merged).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    module = os.environ.get("AUTH_PROXY_MODULE") or str(REPO / "build" / "mod_auth_proxy.so")
    if not Path(module).exists():
        print(f"{module} is missing: run bench/run (it builds the module)", file=sys.stderr)
        return 2
    for tool in ["wrk", "htpasswd"] + (["squid"] if "squid" in a.servers else []):
        if not shutil.which(tool):
            print(f"{tool} is missing: run bench/run (it installs what is needed)", file=sys.stderr)
            return 2
    started = time.time()
    load_before = Path("/proc/loadavg").read_text().split()[0:3]
    run = Run.create(a, module)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run.start_backend()
        measure(run)
        md = report(run, started, " ".join(load_before))
    finally:
        run.close()
    out = Path(a.out)
    if a.update and out.exists():
        md = merge_report(out.read_text(), md)
    print(md)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    progress(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
