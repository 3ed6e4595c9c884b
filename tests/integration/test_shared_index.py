"""Shared user index: after a change, one process parses the file and the server processes map its index.

The index builder (a process of the parent's identity) writes the index of
each new file version under the runtime directory (run/auth_proxy/), and
every server process maps that same file, so the page cache holds one copy.
One parse per file version for the whole server, and one APX02003 line:
server processes never parse or index the file; until the builder
publishes the new version, a request reads the changed file for its one
user, as mod_authn_file does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import time
from pathlib import Path

import pytest

from harness import proxied_location, proxy_status

USERS = 200_000


def sha_line(user: str, password: str) -> str:
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def write_users(path: Path, count: int, extra: str = "") -> None:
    same = sha_line("x", "pw").split(":", 1)[1]       # one hash for all: only the size matters here
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("".join(f"user{i:07d}:{same}" for i in range(count)) + extra)
    tmp.replace(path)


def config(users: Path, backend) -> str:
    return "StartServers 2\n" + proxied_location("/p", backend.url, users, "Shared")


def reload_lines(log: str, users: Path) -> list[tuple[str, bool]]:
    """(pid, mapped) for every line saying a process took up the new version:
    APX02003 'reloaded' (parsed, once for the server) or APX02032 'serving'
    (a server process maps what the builder published)."""
    out = []
    for line in log.splitlines():
        pid = re.search(r"\[pid (\d+)", line)
        if f"APX02003: reloaded {users}: {USERS + 1} users in" in line:
            out.append((pid.group(1) if pid else "?", False))
        elif f"APX02032: serving {users} from the index builder's index: {USERS + 1} users" in line:
            out.append((pid.group(1) if pid else "?", True))
    return out


def test_after_a_reload_only_one_process_parses_and_the_others_map_its_index(make_httpd, backend, server_root):
    users = Path(server_root) / "users"
    write_users(users, USERS)
    h = make_httpd(config(users, backend), mpm="event")
    assert proxy_status(h, "user0000001", "pw") == 200
    assert list((h.root / "run" / "auth_proxy").glob("*.idx")), "the parent built no shared index at start"
    _, children = server_pids(h)
    h.mark_log()

    write_users(users, USERS, sha_line("newbie", "newbie-pw"))
    # Every server process reports the new version once it maps it, and the
    # builder once it wrote it: it logs after it publishes, so a child may
    # map the index (and say so) before the builder's line is in.
    deadline = time.monotonic() + 20

    def all_reported() -> bool:
        lines = reload_lines(h.log_since(), users)
        return ({pid for pid, mapped in lines if mapped} >= {str(c) for c in children}
                and any(not mapped for _pid, mapped in lines))

    while not all_reported():
        assert time.monotonic() < deadline, f"not every process reported the new index: {reload_lines(h.log_since(), users)}"
        time.sleep(0.05)
    lines = reload_lines(h.log_since(), users)
    print(f"\nreload log lines (pid, mapped): {lines}")

    parsed = [pid for pid, mapped in lines if not mapped]
    mapped = [pid for pid, mapped in lines if mapped]
    assert len(parsed) == 1, f"expected exactly one process to parse the file: {lines}"
    assert parsed[0] not in mapped, lines
    assert parsed[0] not in {str(c) for c in children}, "a server process parsed the file itself"
    # One APX02003 line for the change, for the whole server.
    assert len(re.findall(r"APX02003: ", h.log_since())) == 1, h.log_since()
    assert all(proxy_status(h, "newbie", "newbie-pw") == 200 for _ in range(8))
    assert all(proxy_status(h, "newbie", "wrong") == 407 for _ in range(4))


def index_mappings(pid: int) -> list[str]:
    """'inode path' of each shared index file process ``pid`` maps ('(deleted)': replaced since)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return []
    fields = [line.split(None, 5) for line in maps.splitlines()]
    return sorted({f"{f[4]} {f[5]}" for f in fields if len(f) == 6 and "/auth_proxy/" in f[5] and ".idx" in f[5]})


def server_pids(h) -> tuple[int, list[int]]:
    """The parent and its server processes (the index builder and the process
    that opens user files as the User are children too, but not of these)."""
    parent = int((h.root / "run" / "httpd.pid").read_text())
    children = [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    helpers = {int(m) for m in re.findall(r"APX03010: index builder (\d+) started", h.log())}
    helpers |= {int(m) for m in re.findall(r"APX02023: user files are opened as \S+ by process (\d+)", h.log())}
    return parent, [c for c in children if c not in helpers]


def test_the_parent_lets_go_of_the_index_and_children_drop_a_replaced_one(make_httpd, backend, server_root):
    users = Path(server_root) / "users"
    write_users(users, USERS)
    h = make_httpd(config(users, backend), mpm="event")
    assert proxy_status(h, "user0000001", "pw") == 200
    parent, children = server_pids(h)
    assert len(children) >= 2
    # The parent built the index file and serves no requests: it maps nothing.
    assert index_mappings(parent) == []
    first = {c: index_mappings(c) for c in children}
    assert all(len(m) == 1 and "(deleted)" not in m[0] for m in first.values()), first
    assert len(set(m[0] for m in first.values())) == 1, f"children map different files: {first}"

    write_users(users, USERS, sha_line("newbie", "newbie-pw"))

    def moved_on(before: list[str], now: list[str]) -> bool:
        # One mapping, of a file that is still there (not "(deleted)"), and
        # not the one from before: the child has really remapped.
        return len(now) == 1 and "(deleted)" not in now[0] and now[0].split()[0] != before[0].split()[0]

    deadline = time.monotonic() + 20
    while True:
        now = {c: index_mappings(c) for c in children}
        if all(moved_on(first[c], m) for c, m in now.items()):
            break
        assert time.monotonic() < deadline, f"not every child moved to the new index: {now}"
        time.sleep(0.05)
    print(f"\nbefore: {first}\nafter:  {now}")
    # Every child moved to the new index and holds nothing of the old one.
    assert all(len(m) == 1 and m != first[c] and "(deleted)" not in m[0] for c, m in now.items()), now
    assert index_mappings(parent) == []
    assert all(proxy_status(h, "newbie", "newbie-pw") == 200 for _ in range(8))


def test_with_reloading_off_the_parent_keeps_the_index_its_children_inherit(make_httpd, backend, server_root):
    users = Path(server_root) / "users"
    write_users(users, 1000)
    h = make_httpd("AuthProxyReloadInterval 0\n" + config(users, backend), mpm="event")
    assert proxy_status(h, "user0000001", "pw") == 200
    parent, children = server_pids(h)
    assert len(index_mappings(parent)) == 1
    assert all(index_mappings(c) == index_mappings(parent) for c in children)


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_a_stopped_builder_holds_up_no_change_and_no_server_process_indexes_the_file(
        make_httpd, backend, server_root, mpm):
    """A builder that takes long (here: stopped) holds up neither a change
    nor memory: until its index is in, each request sees that the file is
    no longer the indexed version and reads it for its one user, as
    mod_authn_file does, so a user added is admitted and a user removed is
    refused at once; no server process parses or indexes the file. Before,
    the previous version answered until the builder published."""
    users = Path(server_root) / "users"
    write_users(users, 1000)
    h = make_httpd(config(users, backend), mpm=mpm)
    assert proxy_status(h, "user0000001", "pw") == 200
    assert proxy_status(h, "user0000999", "pw") == 200
    builder = int(re.findall(r"APX03010: index builder (\d+) started", h.log())[-1])
    _, children = server_pids(h)
    h.mark_log()

    os.kill(builder, signal.SIGSTOP)
    try:
        write_users(users, 999, sha_line("newbie", "newbie-pw"))   # user0000999 removed, newbie added
        # Long enough for any process that would index the file itself
        # (as they did after a 3 s grace, once) to have done so.
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert proxy_status(h, "newbie", "newbie-pw") == 200, "a user on disk was refused"
            assert proxy_status(h, "user0000999", "pw") == 407, "a user removed from the file was admitted"
            assert proxy_status(h, "user0000001", "pw") == 200, "a user still in the file was refused"
            time.sleep(0.1)
        log = h.log_since()
        # APX02003 is a process that parsed the file. (A child that prefork
        # starts meanwhile maps the builder's last index and says so,
        # APX02032: no parse, and the version it maps is behind, so it reads
        # for one user like the others.)
        assert not re.search(r"APX02003: ", log), f"a server process indexed the file itself:\n{log}"
    finally:
        os.kill(builder, signal.SIGCONT)

    # Once published, the builder's index is what the server processes serve.
    deadline = time.monotonic() + 20
    while not re.search(rf"APX02032: serving {users} from the index builder's index: 1000 users", h.log_since()):
        assert time.monotonic() < deadline, f"the builder's index was not taken up: {h.log_since()}"
        time.sleep(0.05)
    assert proxy_status(h, "newbie", "newbie-pw") == 200
    assert proxy_status(h, "user0000999", "pw") == 407
    parses = re.findall(r"\[pid (\d+)[^\]]*\][^\n]*APX02003: reloaded ", h.log_since())
    assert parses == [str(builder)], f"expected one parse, the builder's: {parses}"
    assert not set(parses) & {str(c) for c in children}
