#!/usr/bin/python3
"""The cost of one Negotiate accept, with MIT's file2 replay cache and
without it ("none:"): a throwaway KDC (tests/integration/kerberos.py),
N distinct python3-gssapi tokens for alice, and negotiate_tool timing
GssAcceptor::accept() alone, in rounds that alternate the two caches.
Every round stores into the same replay cache file, which keeps what it
stored for the clock skew (--clockskew, MIT's default 300 s), so later
rounds measure a fuller cache.

    bench/micro/negotiate_accept.py build/tests/negotiate_tool [--tokens 2000] [--rounds 5] [--threads 1]
        [--clockskew 300]

Run as root (the KDC's database and the keytab are created here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
from kerberos import USERS, Kdc, negotiate_header  # noqa: E402


def run(tool: str, keytab: Path, env: dict, rcache: str, headers: list[str], threads: int) -> dict:
    out = subprocess.run([tool, "accept", "--keytab", str(keytab), "--rcache", rcache, "--timing",
                          "--threads", str(threads)],
                         input="\n".join(headers) + "\n", env=env, capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    statuses = {line.get("status") for line in lines[1:-1]}
    assert statuses == {"accepted"}, statuses   # every token distinct: nothing is a replay
    return lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clockskew", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="negotiate_bench_") as directory:
        kdc = Kdc(Path(directory) / "kdc").start()
        try:
            kdc.add_user("alice", USERS["alice"])
            kdc.add_service("HTTP/127.0.0.1")
            keytab = kdc.keytab(Path(directory) / "http.keytab", "HTTP/127.0.0.1")
            ccache = kdc.kinit("alice", USERS["alice"], Path(directory) / "alice.ccache")
            os.environ.update(kdc.env(ccache))
            # The acceptor's krb5.conf: the realm's, with the skew a real server keeps.
            conf = Path(directory) / "acceptor-krb5.conf"
            conf.write_text(kdc.krb5_conf.read_text().replace(f"clockskew = {kdc.clockskew}",
                                                              f"clockskew = {args.clockskew}"))
            env = {**kdc.env(), "KRB5_CONFIG": str(conf)}
            results: dict[str, list[dict]] = {"file2": [], "none": []}
            for round_ in range(args.rounds):
                for kind in ("file2", "none"):
                    headers = [negotiate_header("127.0.0.1", ccache) for _ in range(args.tokens)]
                    rcache = f"file2:{directory}/shared.rcache2" if kind == "file2" else "none:"
                    results[kind].append(run(args.tool, keytab, env, rcache, headers, args.threads))
        finally:
            kdc.stop()
    for kind, rows in results.items():
        print(f"{kind:6} per round: " + ", ".join(f"{row['us_per_accept']:.1f}" for row in rows) + " us/accept")
        us = [row["us_per_accept"] for row in rows]
        rate = [row["accepts_per_second"] for row in rows]
        print(f"{kind:6} threads={args.threads} tokens={args.tokens} rounds={args.rounds}: "
              f"median {statistics.median(us):.1f} us/accept (min {min(us):.1f}, max {max(us):.1f}), "
              f"median {statistics.median(rate):.0f} accepts/s")


if __name__ == "__main__":
    main()
