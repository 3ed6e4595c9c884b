"""Nothing running as the server's User can change who gets in.

httpd starts as root and serves as an unprivileged User (www-data); web
applications run as that User. The index files every server process maps
decide who gets in, so they, and the directory that holds them, are written
only by root (the parent at start, then the index builder process) and are
used only if their owner, mode and link count say so. Here an attacker
running as the User tries every way to change them, and plants a directory
before start; no forged user is ever admitted, nothing crashes, and the real
users still get in.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import as_server_user, htpasswd, proxied_location, proxy_status, run_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or run_user() is None,
                                reason="needs root, to run httpd with an unprivileged User")

INDEX_TOOL = os.environ.get("AUTH_PROXY_INDEX_TOOL", "")

ATTACK = r"""
import errno, os, sys
op, *args = sys.argv[1:]
try:
    if op == "rename": os.rename(args[0], args[1])
    elif op == "write": os.close(os.open(args[0], os.O_WRONLY))
    elif op == "truncate": os.truncate(args[0], 0)
    elif op == "link": os.link(args[0], args[1])
    elif op == "symlink": os.symlink(args[0], args[1])
    elif op == "create": os.close(os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    elif op == "chmod": os.chmod(args[0], int(args[1], 8))
    elif op == "unlink": os.unlink(args[0])
    elif op == "mkdir": os.mkdir(args[0])
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def as_user(*args: str) -> str:
    """Runs one attack as the server's User; returns "OK" or the errno name."""
    return as_server_user(ATTACK, *args).strip()


def index_name(user_file: str) -> str:
    """The module's index file name for a user file: FNV-1a 64 of the path."""
    h = 0xcbf29ce484222325
    for b in user_file.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}.idx"


@pytest.fixture
def attacker_dir():
    """A directory of the attacker's own (as /tmp would give them)."""
    path = tempfile.mkdtemp(prefix="attacker_")
    account = pwd.getpwnam(run_user())
    os.chown(path, account.pw_uid, account.pw_gid)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def forge(attacker_dir: Path, user_file: str) -> Path:
    """An index that admits mallory, claiming to be the index of the current
    version of @p user_file (what the module's own header check accepts)."""
    assert INDEX_TOOL, "AUTH_PROXY_INDEX_TOOL is not set (ctest sets it)"
    text = attacker_dir / "mallory.htpasswd"
    htpasswd(text, "mallory", "mallory-pw", "-s", create=True)
    out = attacker_dir / "forged.idx"
    subprocess.run([INDEX_TOOL, "forge", str(text), user_file, str(out)], check=True)
    account = pwd.getpwnam(run_user())
    os.chown(out, account.pw_uid, account.pw_gid)
    return out


def config(users: str, backend) -> str:
    return "StartServers 2\n" + proxied_location("/p", backend.url, users, "Proxy")


def statuses(h, user: str, password: str, n: int = 8) -> set:
    """Statuses of @p n requests on fresh connections: they reach every server process."""
    return {proxy_status(h, user, password) for _ in range(n)}


@pytest.fixture
def users(make_users):
    return make_users({"alice": "alice-pw"}, ("-s",))


def test_the_user_can_neither_replace_rewrite_truncate_link_nor_add_an_index(make_httpd, backend, users,
                                                                             attacker_dir):
    h = make_httpd(config(users, backend))
    directory = h.root / "run" / "auth_proxy"
    index = directory / index_name(users)
    assert statuses(h, "alice", "alice-pw") == {200}   # serving: the parent has built the index
    assert index.exists()
    st = index.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode), st.st_nlink) == (0, 0o640, 1)
    dst = directory.stat()
    assert dst.st_uid == 0 and stat.S_IMODE(dst.st_mode) == 0o750
    forged = forge(attacker_dir, users)

    attempts = {
        "replace the index by rename": ("rename", str(forged), str(index)),
        "rewrite it in place": ("write", str(index)),
        "truncate it": ("truncate", str(index)),
        "remove it": ("unlink", str(index)),
        "make it writable": ("chmod", str(index), "666"),
        "open the directory up": ("chmod", str(directory), "777"),
        "plant a symbolic link in its place": ("symlink", str(forged), str(directory / "planted.idx")),
        "add a file": ("create", str(directory / "extra.idx")),
        "add a directory": ("mkdir", str(directory / "sub")),
    }
    for what, attack in attempts.items():
        assert as_user(*attack) in ("EACCES", "EPERM"), what
    # A hard link needs write access to the file under fs.protected_hardlinks;
    # where that is off it succeeds, and the module must refuse a linked index.
    linked = as_user("link", str(index), str(attacker_dir / "linked.idx"))
    print(f"\nhard link by the User: {linked}")

    # The file changes: the builder writes a new index and every process maps it.
    htpasswd(users, "carol", "carol-pw", "-s")
    deadline = time.monotonic() + 10
    while statuses(h, "carol", "carol-pw") != {200}:
        assert time.monotonic() < deadline, "the new user was never admitted"
        time.sleep(0.1)
    assert statuses(h, "mallory", "mallory-pw") == {407}
    assert statuses(h, "alice", "alice-pw") == {200}
    if linked == "OK":
        os.unlink(attacker_dir / "linked.idx")


def test_a_directory_the_user_planted_before_start_is_moved_aside_and_never_trusted(make_httpd, backend, users,
                                                                                    attacker_dir):
    h = make_httpd(config(users, backend), start=False)
    planted = h.root / "run" / "auth_proxy"
    planted.mkdir()
    account = pwd.getpwnam(run_user())
    os.chown(planted, account.pw_uid, account.pw_gid)
    os.chmod(planted, 0o700)
    # Inside: the forged index under the very name the module will look for.
    forged = forge(attacker_dir, users)
    assert as_user("rename", str(forged), str(planted / index_name(users))) == "OK"
    assert as_user("symlink", "/etc/shadow", str(planted / "link.idx")) == "OK"

    h.start()
    assert statuses(h, "mallory", "mallory-pw") == {407}
    assert statuses(h, "alice", "alice-pw") == {200}
    assert h.wait_for_log(r"APX03006: .*/run/auth_proxy was owned by uid \d+, not 0; moved aside to "), h.log()
    fresh = planted.stat()
    assert (fresh.st_uid, stat.S_IMODE(fresh.st_mode)) == (0, 0o750)
    assert not (planted / "link.idx").exists()


def test_files_a_crash_left_behind_are_removed_at_start(make_httpd, backend, users):
    h = make_httpd(config(users, backend), start=False)
    directory = h.root / "run" / "auth_proxy"
    directory.mkdir(mode=0o750)
    leftovers = [index_name(users) + ".tmp-0123456789abcdef", index_name(users) + ".lock",
                 "0000000000000000.idx"]
    for name in leftovers:
        (directory / name).write_text("left by a crash")
    h.start()
    assert statuses(h, "alice", "alice-pw") == {200}
    names = sorted(p.name for p in directory.iterdir())
    assert names == [index_name(users)], names
