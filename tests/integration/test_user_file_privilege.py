"""Root reads no user file the User could not read.

httpd starts as root and serves as its User (www-data). The parent (at
start) and the index builder (after every change) read user files for the
server processes and write what they read into index files the User can
read. Stock httpd reads a user file in the child, as the User, so whatever
the User cannot open can never reach it. Here the module must do the same:
user files are opened with the User's rights, symbolic links followed as
the User would, and a file the User cannot open is answered as stock does
(500, one line naming the file and the User), with nothing of it in any
file the User can read.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness import as_server_user, htpasswd, proxied_location, proxy_status, readable_files_holding, run_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or run_user() is None,
                                reason="needs root, to run httpd with an unprivileged User")

MPMS = ["event", "prefork"]

REPLACE_BY_LINK = r"""
import os, sys
target, path = sys.argv[1:]
os.symlink(target, path + ".new")
os.rename(path + ".new", path)
print("OK")
"""


def leaked(h, needles: list[str]) -> list[str]:
    """What the User can read under the server's runtime directory (the index
    directory included) that holds one of @p needles."""
    return [f"{path} {needle}" for path, needle in readable_files_holding(h.root / "run", needles)]


def statuses(h, n: int = 8) -> set:
    """Statuses of @p n requests on fresh connections: they reach every server process."""
    return {proxy_status(h, "alice", "alice-pw") for _ in range(n)}


def refused_line(path: str) -> str:
    return rf"APX02020: user file {re.escape(path)} cannot be opened by {re.escape(run_user())}: Permission denied"


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def webapp_dir(server_root):
    """A directory the User can write, as web applications keep their htpasswd files in."""
    path = Path(server_root) / "webapp"
    path.mkdir()
    account = pwd.getpwnam(run_user())
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


@pytest.fixture
def users(webapp_dir):
    path = webapp_dir / "users"
    htpasswd(path, "alice", "alice-pw", "-s", create=True)
    return str(path)


@pytest.fixture
def root_secret():
    """A root-only file (0600, in a 0700 directory) in htpasswd form: a stand-in
    for /etc/shadow or a key, with lines an indexer would keep. Returns its path
    and the bytes that must never show."""
    directory = tempfile.mkdtemp(prefix="auth_proxy_secret_")
    os.chmod(directory, 0o700)
    token = secrets.token_hex(12)
    path = Path(directory) / "secret"
    path.write_text(f"rootonly_{token}:{{SHA}}{token}AAAAAAAAAAAAAAAA=\n")
    os.chmod(path, 0o600)
    yield str(path), [f"rootonly_{token}", token]
    shutil.rmtree(directory, ignore_errors=True)


def shadow_secret():
    """/etc/shadow, read only here to learn what must never show: each entry
    after its name (what an htpasswd reader takes for the hash)."""
    try:
        text = Path("/etc/shadow").read_text()
    except OSError:
        return None
    needles = sorted({line.split(":", 1)[1] for line in text.splitlines() if line.count(":") >= 2})
    return "/etc/shadow", needles


def serve(make_httpd, backend, users: str, mpm: str):
    return make_httpd("AuthProxyReloadInterval 1\n" + proxied_location("/p", backend.url, users, "Proxy"), mpm=mpm)


def assert_refused_without_leak(h, path: str, users: str, needles: list[str]) -> None:
    """The module said once that the User cannot open @p users (which leads to
    @p path), every request gets 500, and no file the User can read holds a needle."""
    reacted = wait_until(lambda: re.search(refused_line(users), h.log()) is not None and statuses(h) == {500})
    assert leaked(h, needles) == []
    assert reacted, h.log()
    assert statuses(h) == {500}
    assert re.search(rf"APX01004: user file {re.escape(users)} cannot be opened by {re.escape(run_user())}",
                     h.log())
    # One line per breakage, from the builder: not one per server process.
    errors = [line for line in h.log().splitlines() if re.search(refused_line(users), line) and ":error]" in line]
    assert len(errors) == 1, "\n".join(errors)


@pytest.mark.parametrize("mpm", MPMS)
def test_a_link_to_a_root_only_file_planted_by_the_user_is_never_read(make_httpd, backend, users, root_secret,
                                                                      mpm):
    secret, needles = root_secret
    h = serve(make_httpd, backend, users, mpm)
    assert statuses(h) == {200}
    h.mark_log()
    assert as_server_user(REPLACE_BY_LINK, secret, users).strip() == "OK"
    assert_refused_without_leak(h, secret, users, needles)


@pytest.mark.parametrize("mpm", MPMS)
def test_a_link_to_etc_shadow_planted_by_the_user_is_never_read(make_httpd, backend, users, mpm):
    shadow = shadow_secret()
    if shadow is None or not shadow[1]:
        pytest.skip("no /etc/shadow entries to look for")
    path, needles = shadow
    h = serve(make_httpd, backend, users, mpm)
    assert statuses(h) == {200}
    assert as_server_user(REPLACE_BY_LINK, path, users).strip() == "OK"
    assert_refused_without_leak(h, path, users, needles)


@pytest.mark.parametrize("mpm", MPMS)
@pytest.mark.parametrize("target", ["environ", "maps"])
def test_a_link_to_proc_self_never_puts_what_the_builder_holds_in_an_index(make_httpd, backend, users, monkeypatch,
                                                                          target, mpm):
    # /proc/self is whoever opens it. Lines an indexer would keep: planted in
    # httpd's environment (which the builder inherits), or the memory map's
    # own ("08:01" in every line), which gives away the server's address layout.
    token = secrets.token_hex(12)
    monkeypatch.setenv("AUTH_PROXY_TEST_MARKER", f"x\nenv_{token}:{{SHA}}{token}AAAAAAAAAAAAAAAA=\n")
    needles = [f"env_{token}", token] if target == "environ" else [" r-xp ", "/usr/sbin/"]
    h = serve(make_httpd, backend, users, mpm)
    assert statuses(h) == {200}
    assert as_server_user(REPLACE_BY_LINK, f"/proc/self/{target}", users).strip() == "OK"
    reacted = wait_until(lambda: re.search(refused_line(users), h.log()) is not None)
    assert leaked(h, needles) == []
    assert reacted, h.log()
    assert statuses(h) == {500}


@pytest.mark.parametrize("mpm", MPMS)
def test_a_root_only_user_file_gets_500_and_its_hashes_reach_no_file_the_user_can_read(make_httpd, backend,
                                                                                        webapp_dir, mpm):
    users = webapp_dir / "users"
    htpasswd(users, "alice", "alice-pw", "-s", create=True)
    os.chown(users, 0, 0)
    os.chmod(users, 0o600)
    name_and_hash = users.read_text().strip()
    h = serve(make_httpd, backend, str(users), mpm)
    assert_refused_without_leak(h, str(users), str(users), [name_and_hash, name_and_hash.split(":", 1)[1]])


KILL = r"""
import os, signal, sys
os.kill(int(sys.argv[1]), signal.SIGKILL)
print("OK")
"""


@pytest.mark.parametrize("mpm", MPMS)
def test_an_opener_the_user_kills_is_replaced_and_files_are_still_read_as_the_user(make_httpd, backend, users,
                                                                                   root_secret, mpm):
    # The opener runs as the User, who may therefore kill it: a new one takes
    # over (and a new builder with it), never root's own rights.
    h = serve(make_httpd, backend, users, mpm)
    assert statuses(h) == {200}
    started = r"APX02023: user files are opened as \S+ by process (\d+)"
    first = int(re.search(started, h.wait_for_log(started)).group(1))
    assert as_server_user(KILL, str(first)).strip() == "OK"
    assert h.wait_for_log(rf"APX02024: the process that opens user files as {re.escape(run_user())} \({first}\) "
                          r"exited; starting a new one", timeout=15)
    assert wait_until(lambda: len(re.findall(started, h.log())) >= 2 and
                      len(re.findall(r"APX03010: index builder \d+ started", h.log())) >= 2)

    htpasswd(users, "bob", "bob-pw", "-s")
    assert wait_until(lambda: proxy_status(h, "bob", "bob-pw") == 200)
    secret, needles = root_secret
    assert as_server_user(REPLACE_BY_LINK, secret, users).strip() == "OK"
    assert_refused_without_leak(h, secret, users, needles)


def running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("mpm", MPMS)
def test_each_configuration_cycle_has_its_own_opener_and_ends_it(make_httpd, backend, users, mpm):
    h = serve(make_httpd, backend, users, mpm)
    started = r"APX02023: user files are opened as \S+ by process (\d+)"
    first = int(re.search(started, h.wait_for_log(started)).group(1))
    assert running(first)
    assert statuses(h) == {200}  # serving: the parent has its signal handlers
    h.graceful()
    assert wait_until(lambda: len(re.findall(started, h.log())) == 2)
    second = int(re.findall(started, h.log())[-1])
    assert wait_until(lambda: not running(first))
    assert running(second)
    assert "APX02024" not in h.log()
    htpasswd(users, "bob", "bob-pw", "-s")
    assert wait_until(lambda: proxy_status(h, "bob", "bob-pw") == 200)
