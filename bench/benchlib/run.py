"""One benchmark run: its options, work directory and module snapshot, the
backend and client every section shares, the servers to stop on the way out,
and what the sections leave for the report."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import basic

from . import REPO
from .clients import Target, Wrk, request_once
from .matrix import AUTH_PROXY_KINDS, PASSWORD, STATIC, USER
from .report import progress
from .servers import Server, Squid, front, start_backend
from .userfiles import UserFiles


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    module: str                                     # the snapshot every server of the run loads
    module_desc: str = ""
    files: UserFiles = None
    backend: Server = None
    wrk: Wrk = None
    live: list = field(default_factory=list)        # servers to stop on the way out
    notes: list = field(default_factory=list)       # lines of the report's header
    sections_md: list = field(default_factory=list)  # each section's Markdown, in the order they ran
    baselines: dict = field(default_factory=dict)   # ("httpd"|"squid", mode) -> [(block, rps)], no-auth runs
    squid_reverse_header: str | None = None         # what Squid's accelerator port reads credentials from
    squid_reverse_status: int | None = None

    @classmethod
    def create(cls, args: argparse.Namespace, module: str) -> "Run":
        """A fresh work directory under /tmp with a copy of @p module, which
        every server of the run loads, even if build/ is rebuilt meanwhile."""
        work = Path(tempfile.mkdtemp(prefix="auth-proxy-bench-"))
        os.chmod(work, 0o755)
        snapshot = work / "mod_auth_proxy.so"
        shutil.copyfile(module, snapshot)
        os.chmod(snapshot, 0o755)
        digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()[:12]
        commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip() or "?"
        run = cls(args, work, str(snapshot))
        run.module_desc = f"{module} (sha256 {digest}…, tree at commit {commit} when the run started)"
        run.files = UserFiles(work / "files")
        run.wrk = Wrk(work)
        progress(f"work directory {work}")
        return run

    def close(self) -> None:
        """Stops every server still running; removes the work directory unless --keep."""
        for server in list(self.live):
            try:
                server.stop()
            except Exception:
                pass
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- servers
    def launch(self, server):
        self.live.append(server)
        server.start()
        return server

    def retire(self, server) -> None:
        server.stop()
        if server in self.live:
            self.live.remove(server)

    def start_backend(self) -> None:
        self.backend = self.launch(start_backend(self.work))

    def front(self, kind: str, user_file: Path | str | None = None, **options) -> Server:
        """A (not yet started) httpd under test in front of the run's backend."""
        return front(self.work, kind, self.backend, self.module, user_file, **options)

    def targets(self, server, kind: str, creds: str | None) -> dict:
        """Reverse and forward Target for a started server of the given kind."""
        b1, b2 = self.backend.port_list
        fwd_path = f"http://127.0.0.1:{b2}/{STATIC}"
        if kind == "squid":
            rev = Target(server.accel_port, f"/{STATIC}")
            fwd = Target(server.forward_port, fwd_path)
            if creds:
                rev.header, rev.credentials = self.squid_reverse_header or "Authorization", creds
                fwd.header, fwd.credentials = "Proxy-Authorization", creds
        else:
            rev = Target(server.port, f"/r/{STATIC}")
            fwd = Target(server.port, fwd_path)
            if creds:
                rev.header = "Proxy-Authorization" if kind in AUTH_PROXY_KINDS else "Authorization"  # stock: 401
                fwd.header = "Proxy-Authorization"
                rev.credentials = fwd.credentials = creds
        return {"reverse": rev, "forward": fwd}

    @staticmethod
    def check(t: Target, what: str) -> float:
        """One request that must succeed; returns how long it took."""
        started = time.time()
        status, _ = request_once(t)
        if status != 200:
            raise RuntimeError(f"{what}: expected 200, got {status}")
        return time.time() - started

    def probe_squid_reverse(self, user_file: Path) -> None:
        """What Squid does for authentication in accelerator mode."""
        sq = self.launch(Squid(self.work, self.backend, user_file))
        try:
            t = self.targets(sq, "squid", None)["reverse"]
            status, headers = request_once(t)
            self.squid_reverse_status = status
            if "www-authenticate" in headers:
                self.squid_reverse_header = "Authorization"
            elif "proxy-authenticate" in headers:
                self.squid_reverse_header = "Proxy-Authorization"
            challenge = headers.get("www-authenticate") or headers.get("proxy-authenticate")
            note = (f"Squid as accelerator (`http_port ... accel`) answers an unauthenticated request with "
                    f"**{status}** and `{'WWW-Authenticate' if 'www-authenticate' in headers else 'Proxy-Authenticate'}: "
                    f"{challenge}`, and reads `{self.squid_reverse_header}`")
            # Does it also accept the other header?
            other = "Proxy-Authorization" if self.squid_reverse_header == "Authorization" else "Authorization"
            s2, _ = request_once(Target(t.port, t.path, other, basic(USER, PASSWORD)))
            note += f"; credentials sent in `{other}` instead get {s2}."
            self.notes.append(note)
            progress(note)
        finally:
            self.retire(sq)
