"""What a server used: its processes' CPU time and memory, its index in the
page cache, its index loads (from the log), and the hash verifications it ran."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def process_tree(pid: int) -> list[int]:
    """@p pid and all its descendants (Squid and its helpers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children_of(p)
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of whole processes (all threads, dead ones included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(sum of Rss, sum of Pss) in kB from smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            if name == "Rss":
                rss += int(rest.split()[0])
            elif name == "Pss":
                pss += int(rest.split()[0])
    return rss, pss


def index_cache_kb(root: Path) -> int:
    """Bytes (kB) of the server's index files held in the page cache (fincore):
    the one shared copy, counted once, whether or not a process has touched it."""
    files = sorted(str(p) for p in (root / "run" / "auth_proxy").glob("*.idx"))
    if not files or shutil.which("fincore") is None:
        return 0
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *files],
                         capture_output=True, text=True).stdout
    return sum(int(v) for v in out.split() if v.isdigit()) // 1024


LOAD_LINE = re.compile(r"\[pid (\d+)(?::tid \d+)?\].*?(?:APX02003: (loaded|reloaded) .*?: (\d+) users in (\d+) ms"
                       r"( \(mapped shared index)?"
                       r"|APX02032: serving .*? from the index builder's index: (\d+) users, after (\d+) ms)")


def load_events(log: str) -> list[dict]:
    """mod_auth_proxy's "(re)loaded FILE: N users in X ms" lines (APX02003,
    the process that read the file) and "serving FILE from the index
    builder's index" lines (APX02032, debug: a server process took it up),
    with the process that logged them and whether it built the index or
    mapped the shared one another process built."""
    events = []
    for m in LOAD_LINE.finditer(log):
        if m.group(6) is not None:
            events.append({"pid": int(m.group(1)), "reload": True, "users": int(m.group(6)),
                           "ms": int(m.group(7)), "mapped": True})
        else:
            events.append({"pid": int(m.group(1)), "reload": m.group(2) == "reloaded", "users": int(m.group(3)),
                           "ms": int(m.group(4)), "mapped": bool(m.group(5))})
    return events


class VerifyCounter:
    """Counts calls of apr_password_validate (every hash verification of
    mod_auth_proxy and of stock httpd) in given processes with a perf uprobe."""

    def __init__(self, module: str) -> None:
        self.event = None
        self.lib = None
        try:
            ldd = subprocess.run(["ldd", module], capture_output=True, text=True, check=True).stdout
            m = re.search(r"libaprutil-1\.so\.0 => (\S+)", ldd)
            if not m or not shutil.which("perf"):
                return
            self.lib = m.group(1)
            r = subprocess.run(["perf", "probe", "-q", "-x", self.lib, "apr_password_validate"],
                               capture_output=True, text=True)
            listing = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
            m = re.search(r"(probe_libaprutil:apr_password_validate)\S*", listing)
            if m:
                self.event = m.group(1)
                self.created = r.returncode == 0
        except (OSError, subprocess.CalledProcessError):
            self.event = None

    def start(self, pids: list[int]) -> subprocess.Popen | None:
        if not self.event:
            return None
        p = subprocess.Popen(["perf", "stat", "-x", ",", "-e", self.event, "-p", ",".join(map(str, pids))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # let perf attach
        return p

    @staticmethod
    def finish(p: subprocess.Popen | None) -> int | None:
        if p is None:
            return None
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        for line in err.splitlines():
            first = line.split(",")[0]
            if first.isdigit():
                return int(first)
        return None

    def close(self) -> None:
        if self.event and getattr(self, "created", False):
            subprocess.run(["perf", "probe", "-q", "-d", self.event], capture_output=True)
