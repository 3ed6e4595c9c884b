"""The htpasswd files the benchmark authenticates against."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .matrix import COLD_PASSWORD, FILLER_PASSWORD, FORMATS, PASSWORD, USER
from .report import progress


class UserFiles:
    """htpasswd files, generated fast: one real htpasswd line for the user we
    authenticate as (last in the file), filler users sharing one precomputed
    hash (their hashes are never verified, only scanned or indexed)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lines: dict[tuple[str, str, str], str] = {}

    def hash_line(self, fmt: str, user: str, password: str) -> str:
        key = (fmt, user, password)
        if key not in self.lines:
            flags = FORMATS[fmt][1]
            out = subprocess.run(["htpasswd", "-nb", *flags, user, password], check=True,
                                 capture_output=True, text=True).stdout
            self.lines[key] = out.splitlines()[0].strip()
        return self.lines[key]

    def path(self, fmt: str, users: int) -> Path:
        p = self.dir / f"{fmt}-{users}.htpasswd"
        if p.exists():
            return p
        started = time.time()
        real = self.hash_line(fmt, USER, PASSWORD)
        filler = self.hash_line(fmt, "filler", FILLER_PASSWORD).split(":", 1)[1]
        tmp = p.with_suffix(".tmp")
        with open(tmp, "w") as f:
            chunk = 100000
            for start in range(0, users - 1, chunk):
                end = min(users - 1, start + chunk)
                f.write("".join([f"{self.filler(i)}:{filler}\n" for i in range(start, end)]))
            f.write(real + "\n")
        os.chmod(tmp, 0o644)
        tmp.rename(p)
        progress(f"generated {p.name}: {users} users, {p.stat().st_size / 1e6:.1f} MB "
                 f"in {time.time() - started:.1f} s")
        return p

    @staticmethod
    def filler(i: int) -> str:
        """The name of filler user i (line i + 1 of every file; its password is FILLER_PASSWORD)."""
        return f"u{i:07d}"

    def cold(self, users: int) -> tuple[Path, list[str]]:
        """`users` distinct users with real bcrypt cost-10 entries (one shared hash string:
        every user still costs its own verification, the cache key includes the user)."""
        p = self.dir / f"cold-{users}.htpasswd"
        names = [f"c{i:05d}" for i in range(users)]
        if not p.exists():
            h = self.hash_line("bcrypt10", "cold", COLD_PASSWORD).split(":", 1)[1]
            p.write_text("".join(f"{n}:{h}\n" for n in names))
            os.chmod(p, 0o644)
        return p, names
