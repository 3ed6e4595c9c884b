"""A user file planted by the server's User costs memory by users, not by bytes.

The User (web applications run as it) can often write the directory that
holds an AuthUserFile. Whatever it puts there, the index builder reads the
file once, in a stream, and the server processes never index it (a request
reads it for its one user, line by line, until the new index is in):
a 1 GB sparse file is refused by its size (500, fail closed), a 300 MB one
of NUL bytes is read until its first line is longer than any htpasswd line
(then nobody is admitted by it), and no process's peak memory comes near
either size.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import proxied_location, proxy_status

PEAK_LIMIT_KIB = 256 * 1024
DEADLINE = 60.0

# Few prefork children: on a module that parses per process, each would
# need gigabytes, and the test must fail, not take the machine down.
MPM_SIZING = {
    "event": "StartServers 2\n",
    "prefork": "StartServers 3\nMinSpareServers 1\nMaxSpareServers 3\n",
}


@pytest.fixture(params=["event", "prefork"])
def mpm(request):
    return request.param


def as_user(*command: str, cwd: Path) -> None:
    """Runs @p command as www-data, the server's User."""
    subprocess.run(["runuser", "-u", "www-data", "--", *command], cwd=cwd, check=True)


def plant_sparse(directory: Path, name: str, size: str) -> None:
    """What the User can do in its own directory: a sparse file renamed over the user file."""
    as_user("truncate", "-s", size, f"{name}.planted", cwd=directory)
    as_user("mv", "-f", f"{name}.planted", name, cwd=directory)


def wait_until(condition, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def steady(h, user: str, password: str, status: int, times: int = 8) -> bool:
    return all(proxy_status(h, user, password) == status for _ in range(times))


def peak_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))


def server_processes(h) -> dict[int, str]:
    """pid -> role, for the httpd parent, the index builder and every server process."""
    parent = int((h.root / "run" / "httpd.pid").read_text())
    builders = {int(p) for p in re.findall(r"APX03010: index builder (\d+) started", h.log())}
    out = {parent: "parent"}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent:
            pid = int(entry.name)
            out[pid] = "index builder" if pid in builders else "server process"
    return out


def assert_every_process_stayed_small(h, mpm: str, after: str) -> dict[int, str]:
    processes = server_processes(h)
    assert "index builder" in processes.values(), processes
    assert list(processes.values()).count("server process") >= 2, processes
    peaks = {f"{role} {pid}": peak_kib(pid) for pid, role in processes.items()}
    print(f"\n[{mpm}] peak resident memory after {after} (KiB): {peaks}")
    too_big = {name: kib for name, kib in peaks.items() if kib >= PEAK_LIMIT_KIB}
    assert not too_big, f"after {after}: over {PEAK_LIMIT_KIB} KiB at peak: {too_big}"
    return processes


def test_a_planted_gigabyte_and_a_planted_300_mb_keep_every_process_small_and_admit_nobody(
        make_httpd, backend, make_users, server_root, mpm):
    directory = Path(server_root) / "app"      # a directory the User can write
    directory.mkdir()
    shutil.chown(directory, "www-data", "www-data")
    users = make_users({"alice": "alice-pw"}, name="app/users")
    h = make_httpd(MPM_SIZING[mpm] + "AuthProxyThrottle Off\n" + proxied_location("/p", backend.url, users), mpm=mpm)
    assert proxy_status(h, "alice", "alice-pw") == 200
    h.mark_log()

    # 300 MB of NUL bytes, under the size limit: no user in it, so nobody
    # is admitted; it is read until its first line is over the line cap.
    plant_sparse(directory, "users", "300M")
    wait_until(lambda: steady(h, "alice", "alice-pw", 407), "every process refuses alice")
    processes = assert_every_process_stayed_small(h, mpm, "300 MB of NUL bytes")
    assert h.wait_for_log(rf"APX02031: {re.escape(users)}: 1 malformed lines ignored: "
                          rf"line 1 longer than 4096 bytes"), h.log_since()
    # Only the builder read it: the server processes followed its index.
    readers = set(re.findall(r"\[pid (\d+)[^\]]*\][^\n]*APX02031:", h.log_since()))
    assert readers == {str(pid) for pid, role in processes.items() if role == "index builder"}, readers

    # 1 GB, over the size limit: refused unread, and the scope answers 500,
    # as for a file that cannot be read.
    h.mark_log()
    plant_sparse(directory, "users", "1G")
    wait_until(lambda: steady(h, "alice", "alice-pw", 500), "every process fails closed")
    assert h.wait_for_log(rf"APX02030: {re.escape(users)} is 1073741824 bytes, over the limit of "
                          rf"536870912 bytes for a user file; refusing everyone until it is smaller"), h.log_since()
    assert_every_process_stayed_small(h, mpm, "1 GB sparse file")
