"""Live reload: a change to an AuthUserFile is seen within a second, without a restart.

Issue 4: an in-place edit by ``htpasswd``, a replacement by rename, a
truncation and a deletion are all seen within 1 second; a deleted file fails
closed (500 + error log); a file caught mid-write admits nobody it should not
and recovers on the next check; a changed file is taken up while the error
log is stuck. Every test runs under event, worker and prefork, because each
child process keeps its own copy of the index.

Timings are measured from the moment the change is on disk. Each process is
told of the change by inotify and otherwise checks every
AuthProxyReloadInterval (0.5 s by default), so a change shows at once, at the
latest after ~0.5 s; the requirement is 1 s and the tests allow 1.2 s so a
busy machine does not turn a correct server into a failure.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import signal
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from harness import htpasswd, htpasswd_delete, proxied_location, proxy_status

MPMS = ["event", "worker", "prefork"]

REQUIRED_SECONDS = 1.2    # "within 1 second", plus a margin for a loaded machine
POLL_SECONDS = 3.0        # keep looking this long, so a slow reload is measured, not just failed
STREAK = 8                # consecutive fresh connections that must agree (reaches every child)
HASH = ("-B", "-C", "5")  # htpasswd flags of every entry written here


# ---------------------------------------------------------------- helpers

def seconds_until(condition, poll_seconds: float = POLL_SECONDS, streak: int = STREAK) -> float | None:
    """Polls ``condition()`` from now on.

    Returns when the first run of ``streak`` consecutive true results began
    (seconds from now), or None if there was no such run within poll_seconds.
    """
    start = time.monotonic()
    run_began, run = 0.0, 0
    while True:
        began = time.monotonic() - start
        if began > poll_seconds:
            return None
        if condition():
            if run == 0:
                run_began = began
            run += 1
            if run >= streak:
                return run_began
        else:
            run = 0


def assert_seen_in_time(what: str, seconds: float | None, mpm: str) -> None:
    print(f"\n[{mpm}] {what}: took effect after "
          f"{'never (> %.1f s)' % POLL_SECONDS if seconds is None else '%.3f s' % seconds}")
    assert seconds is not None, f"{what}: not seen within {POLL_SECONDS} s"
    assert seconds <= REQUIRED_SECONDS, f"{what}: seen only after {seconds:.3f} s"


def reverse_proxy(users: str, backend, extra: str = "") -> str:
    # These clients send passwords a reload has just made wrong, from one
    # address, on purpose: the guessing throttle (test_throttle.py) would
    # rightly lock them out. Without it, 16 such clients want more hashes at
    # once than a small machine's default AuthProxyVerifyLimit runs, and the
    # excess would be shed with 503 (test_verify_limit.py): these tests are
    # about reloads, so every client gets a slot.
    return (f"AuthProxyThrottle Off\nAuthProxyVerifyLimit 16\n{extra}\n"
            + proxied_location("/p", backend.url, users, "Reload"))


@pytest.fixture
def users(make_users):
    return make_users({"alice": "alice-pw", "bob": "bob-pw", "eve": "eve-pw"}, HASH)


@pytest.fixture(params=MPMS)
def mpm(request):
    return request.param


@pytest.fixture
def proxy(make_httpd, backend, users, mpm):
    return make_httpd(reverse_proxy(users, backend), mpm=mpm)


def warm_up(h, user: str, password: str, times: int = 10) -> None:
    """Admits the user on several connections, so every child has verified (and cached) it."""
    for _ in range(times):
        assert proxy_status(h, user, password) == 200


# ---------------------------------------------------------------- tests

def test_removed_user_is_refused_within_a_second_without_restart(proxy, users, mpm):
    warm_up(proxy, "eve", "eve-pw")
    proxy.mark_log()

    htpasswd_delete(users, "eve")
    took = seconds_until(lambda: proxy_status(proxy, "eve", "eve-pw") == 407)

    assert_seen_in_time("htpasswd -D eve", took, mpm)
    assert proxy_status(proxy, "alice", "alice-pw") == 200
    assert f"reloaded {users}: 2 users" in proxy.log_since()


def test_added_user_is_admitted_without_restart(proxy, users, mpm):
    assert proxy_status(proxy, "carol", "carol-pw") == 407

    htpasswd(users, "carol", "carol-pw", *HASH)
    took = seconds_until(lambda: proxy_status(proxy, "carol", "carol-pw") == 200)

    assert_seen_in_time("htpasswd adds carol", took, mpm)


def test_changed_password_refuses_the_old_one_even_while_it_is_cached(proxy, users, mpm):
    warm_up(proxy, "alice", "alice-pw")   # verified, so now in every child's cache

    htpasswd(users, "alice", "alice-new", *HASH)
    took = seconds_until(lambda: proxy_status(proxy, "alice", "alice-pw") == 407
                         and proxy_status(proxy, "alice", "alice-new") == 200)

    assert_seen_in_time("htpasswd changes alice's password", took, mpm)
    assert [proxy_status(proxy, "alice", "alice-pw") for _ in range(10)] == [407] * 10


def test_file_replaced_by_rename_is_served(proxy, users, mpm, make_users):
    warm_up(proxy, "alice", "alice-pw")
    replacement = make_users({"dave": "dave-pw", "bob": "bob-pw"}, HASH, name="users.new")

    os.replace(replacement, users)
    took = seconds_until(lambda: proxy_status(proxy, "dave", "dave-pw") == 200
                         and proxy_status(proxy, "alice", "alice-pw") == 407)

    assert_seen_in_time("mv users.new users", took, mpm)
    assert proxy_status(proxy, "bob", "bob-pw") == 200


def test_deleted_file_fails_closed_with_500_and_recovers_when_recreated(proxy, users, mpm, make_users):
    warm_up(proxy, "alice", "alice-pw")
    proxy.mark_log()

    os.unlink(users)
    took = seconds_until(lambda: proxy_status(proxy, "alice", "alice-pw") == 500)

    assert_seen_in_time("rm users", took, mpm)
    log = proxy.log_since()
    assert re.search(rf"APX01004: user file {re.escape(users)} cannot be opened by [^:]+: "
                     rf"No such file or directory; refusing user alice", log), log
    assert re.search(rf"APX02020: user file {re.escape(users)} cannot be opened", log), log

    make_users({"alice": "alice-pw"}, HASH)
    took = seconds_until(lambda: proxy_status(proxy, "alice", "alice-pw") == 200)
    assert_seen_in_time("users recreated", took, mpm)


def test_truncated_file_refuses_everyone_then_recovers(proxy, users, mpm):
    warm_up(proxy, "alice", "alice-pw")
    content = Path(users).read_bytes()

    with open(users, "r+b") as f:
        f.truncate(0)
    took = seconds_until(lambda: proxy_status(proxy, "alice", "alice-pw") == 407
                         and proxy_status(proxy, "bob", "bob-pw") == 407)
    assert_seen_in_time("users truncated to 0 bytes", took, mpm)
    statuses = {proxy_status(proxy, u, f"{u}-pw") for u in ("alice", "bob", "eve") for _ in range(5)}
    assert statuses == {407}, "an empty file must refuse everyone, and not with a server error"

    with open(users, "r+b") as f:
        f.write(content)
    took = seconds_until(lambda: proxy_status(proxy, "alice", "alice-pw") == 200)
    assert_seen_in_time("users rewritten", took, mpm)


def test_file_caught_mid_write_admits_nobody_it_should_not(proxy, users, mpm, make_users):
    """A writer keeps rewriting the file in place in two halves, pausing in
    between, so the reload thread mostly finds it half-written. Meanwhile a
    removed user and wrong passwords must never get through."""
    htpasswd_delete(users, "eve")
    assert seconds_until(lambda: proxy_status(proxy, "eve", "eve-pw") == 407) is not None
    make_users({"carol": "carol-pw"}, HASH)     # alice, bob, carol
    content = Path(users).read_bytes()
    # Cut inside bob's hash: the first half holds alice and a truncated bob.
    cut = content.index(b"bob:") + 20
    proxy.mark_log()

    stop = threading.Event()
    results: list[tuple[str, int]] = []

    def client(attempts: list[tuple[str, str, str]]) -> None:
        while not stop.is_set():
            for label, user, password in attempts:
                results.append((label, proxy_status(proxy, user, password)))

    attempts = [("removed eve", "eve", "eve-pw"), ("alice, wrong password", "alice", "bob-pw"),
                ("bob, wrong password", "bob", "alice-pw"), ("alice", "alice", "alice-pw"),
                ("bob", "bob", "bob-pw")]
    clients = [threading.Thread(target=client, args=(attempts,)) for _ in range(4)]
    for t in clients:
        t.start()
    rng = random.Random(4)
    writes = 0
    try:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            with open(users, "r+b") as f:       # same inode, truncate then write, as htpasswd does
                f.truncate(0)
                f.write(content[:cut])
                f.flush()
                time.sleep(rng.uniform(0.05, 0.12))   # half-written most of the time
                f.write(content[cut:])
            writes += 1
            time.sleep(rng.uniform(0.0, 0.03))
    finally:
        stop.set()
        for t in clients:
            t.join()

    by_label: dict[str, set] = {}
    for label, status in results:
        by_label.setdefault(label, set()).add(status)
    print(f"\n[{mpm}] {writes} half-and-half writes, {len(results)} requests: {by_label}")
    for label in ("removed eve", "alice, wrong password", "bob, wrong password"):
        assert by_label[label] == {407}, f"{label}: {by_label[label]}"
    assert by_label["alice"] <= {200, 407} and by_label["bob"] <= {200, 407}, by_label

    # The reload thread really read half-written files (fewer users than the whole file) ...
    counts = [int(n) for n in re.findall(rf"reloaded {re.escape(users)}: (\d+) users", proxy.log_since())]
    assert counts and min(counts) < 3, f"no half-written file was ever loaded: {counts}"
    # ... and the next check after the last complete write recovers.
    took = seconds_until(lambda: all(proxy_status(proxy, u, f"{u}-pw") == 200 for u in ("alice", "bob", "carol")))
    assert_seen_in_time("complete file after the half-written ones", took, mpm)


def test_new_child_processes_do_not_serve_a_stale_file(make_httpd, backend, users, mpm):
    """Children are replaced all the time (MaxConnectionsPerChild, idle
    scaling); one forked after a change must not admit a user removed
    before it was born, not even for its first half second."""
    h = make_httpd(reverse_proxy(users, backend, extra="MaxConnectionsPerChild 2"), mpm=mpm)
    assert proxy_status(h, "eve", "eve-pw") == 200

    htpasswd_delete(users, "eve")
    time.sleep(REQUIRED_SECONDS)   # the rule under test: refused once the removal is this old
    statuses = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        statuses.append(proxy_status(h, "eve", "eve-pw"))
    print(f"\n[{mpm}] {len(statuses)} requests to recycled children after the removal: "
          f"{ {s: statuses.count(s) for s in set(statuses)} }")
    assert set(statuses) == {407}
    pids = set(re.findall(r"\[pid (\d+)", h.log()))
    assert len(pids) > 3, "children were not recycled; the test proved nothing"


def test_changes_are_noticed_at_once_not_at_the_next_interval(make_httpd, backend, users, mpm, make_users):
    """With a 60 s interval, only inotify can explain a reload within a second."""
    proxy = make_httpd(reverse_proxy(users, backend, extra="AuthProxyReloadInterval 60"), mpm=mpm)
    warm_up(proxy, "eve", "eve-pw")

    htpasswd_delete(users, "eve")
    took = seconds_until(lambda: proxy_status(proxy, "eve", "eve-pw") == 407)
    assert_seen_in_time("htpasswd -D eve, interval 60 s", took, mpm)

    replacement = make_users({"dave": "dave-pw"}, HASH, name="users.new")
    os.replace(replacement, users)
    took = seconds_until(lambda: proxy_status(proxy, "dave", "dave-pw") == 200)
    assert_seen_in_time("mv users.new users, interval 60 s", took, mpm)

    os.chmod(users, 0o000)  # the children (never root) can no longer read it
    took = seconds_until(lambda: proxy_status(proxy, "dave", "dave-pw") == 500)
    assert_seen_in_time("chmod 000 users, interval 60 s", took, mpm)
    os.chmod(users, 0o644)
    took = seconds_until(lambda: proxy_status(proxy, "dave", "dave-pw") == 200)
    assert_seen_in_time("chmod 644 users, interval 60 s", took, mpm)


def bytes_waiting_in(pid: int) -> int:
    """How much the process @p pid has not read yet from its stdin pipe."""
    fd = os.open(f"/proc/{pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
    finally:
        os.close(fd)


def test_a_stuck_error_log_never_holds_up_a_reload(make_httpd, backend, users, mpm, server_root):
    """A write to the error log can block for long (a piped logger that
    stopped reading, a disk that stalls); the processes that take up a changed
    user file log each reload, and must not wait there. The log here is a
    pipe to a logger the test stops: anything that writes to it blocks."""
    logger = Path(__file__).with_name("pipe_logger.py")
    pid_file = Path(server_root) / "pipe_logger.pid"
    # Reloads are logged (info, a server's level). Requests to /p log
    # nothing (a per-directory level), so they can be made while the log is
    # stuck; refusals at /f are logged (error), and fill the pipe.
    quiet = proxied_location("/p", backend.url, users, "Reload").replace("</Location>", "    LogLevel crit\n</Location>")
    body = "AuthProxyThrottle Off\n" + quiet + proxied_location("/f", backend.url, users, "Reload")
    h = make_httpd(body, mpm=mpm, settings={
        "ErrorLog": f'"||{sys.executable} {logger} {server_root}/httpd0/logs/error_log {pid_file}"',
        "LogLevel": "warn auth_proxy:info",
    })
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the piped logger did not start"
        time.sleep(0.05)
    logger_pid = int(pid_file.read_text())
    warm_up(h, "alice", "alice-pw")

    stopped = threading.Event()

    def refused_until_the_log_blocks() -> None:
        # Each refusal logs a line; once the pipe is full the next one hangs
        # in httpd until the logger runs again.
        while not stopped.is_set():
            proxy_status(h, "alice", "wrong-pw", path="/f/x", timeout=120)

    filler = threading.Thread(target=refused_until_the_log_blocks, daemon=True)
    os.kill(logger_pid, signal.SIGSTOP)
    try:
        filler.start()
        deadline = time.monotonic() + 30
        while bytes_waiting_in(logger_pid) < 4096 - 512:  # no room for another line: writers block
            assert time.monotonic() < deadline, "the refusals did not fill the log's pipe"
            time.sleep(0.05)

        htpasswd(users, "carol", "carol-pw", *HASH)
        took = seconds_until(lambda: proxy_status(h, "carol", "carol-pw") == 200)
        assert_seen_in_time("htpasswd adds carol while the error log is stuck", took, mpm)
        # The next change too: the line about the first one is still unwritten.
        htpasswd(users, "carol", "carol-new", *HASH)
        took = seconds_until(lambda: proxy_status(h, "carol", "carol-new") == 200)
        assert_seen_in_time("htpasswd changes carol's password while the error log is stuck", took, mpm)
        assert bytes_waiting_in(logger_pid) >= 4096 - 512, "the log was not stuck throughout"
    finally:
        stopped.set()
        os.kill(logger_pid, signal.SIGCONT)
        filler.join(timeout=60)
    h.mark_log()
    assert proxy_status(h, "carol", "carol-pw", path="/f/x") == 407
    assert h.wait_for_log(r"user carol: authentication failure"), "the log did not come back"


def test_reload_interval_0_ignores_changes_until_a_graceful_restart(make_httpd, backend, users, mpm):
    h = make_httpd(reverse_proxy(users, backend, extra="AuthProxyReloadInterval 0"), mpm=mpm)
    warm_up(h, "eve", "eve-pw", times=4)

    htpasswd_delete(users, "eve")
    htpasswd(users, "carol", "carol-pw", *HASH)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert proxy_status(h, "eve", "eve-pw") == 200, "the file was reloaded although the interval is 0"
        assert proxy_status(h, "carol", "carol-pw") == 407, "the file was reloaded although the interval is 0"

    h.graceful()
    took = seconds_until(lambda: proxy_status(h, "eve", "eve-pw") == 407
                         and proxy_status(h, "carol", "carol-pw") == 200, poll_seconds=10)
    assert took is not None, "a graceful restart did not pick up the changed file"


def longest_refusal(timeline: list[tuple[float, int]]) -> float:
    """Longest stretch (seconds) from a refusal to the next admission, or to the end."""
    longest, refused_since = 0.0, None
    for t, status in sorted(timeline):
        if status != 200 and refused_since is None:
            refused_since = t
        elif status == 200 and refused_since is not None:
            longest, refused_since = max(longest, t - refused_since), None
    if refused_since is not None:
        longest = max(longest, max(t for t, _ in timeline) - refused_since)
    return longest


# Which child answered which request: the access log names the pid of each.
PER_CHILD_LOG = """
LogFormat "%P %{X-Seq}i %>s" per_child
CustomLog logs/per_child_log per_child
"""


def test_concurrent_clients_during_repeated_rewrites_get_no_server_errors(make_httpd, backend, users, mpm,
                                                                          server_root):
    """16 clients keep sending requests while the file is edited by htpasswd,
    replaced by rename and rewritten in place, over and over, for 2 seconds
    and at least 400 requests. Alice's entry never changes; eve is never in
    the file. A check that lands between an in-place truncation and the
    write sees an empty file, so that child refuses alice too, but only
    until its next check."""
    proxy = make_httpd(reverse_proxy(users, backend, extra=PER_CHILD_LOG), mpm=mpm)
    htpasswd_delete(users, "eve")
    assert seconds_until(lambda: proxy_status(proxy, "eve", "eve-pw") == 407) is not None

    kinds = [("alice", "alice", "alice-pw"), ("alice", "alice", "alice-pw"),
             ("alice, wrong password", "alice", "wrong"), ("eve", "eve", "eve-pw")]
    stop = threading.Event()
    lock = threading.Lock()
    results: dict[int, tuple[str, float, int]] = {}     # sequence number -> label, sent at, status
    started = time.monotonic()

    def client(first: int) -> None:
        i = first
        while not stop.is_set():
            label, user, password = kinds[i % len(kinds)]
            with lock:
                seq = len(results)
                results[seq] = (label, 0.0, 0)
            sent = time.monotonic() - started
            status = proxy_status(proxy, user, password, headers={"X-Seq": str(seq)})
            with lock:
                results[seq] = (label, sent, status)
            i += 1

    clients = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in clients:
        t.start()
    rewrites = 0
    replacement = f"{server_root}/users.next"
    try:
        while time.monotonic() - started < 2.0 or (len(results) < 400 and time.monotonic() - started < 60):
            step = rewrites % 3
            if step == 0:
                htpasswd(users, "bob", f"bob-{rewrites}", *HASH)
            elif step == 1:
                Path(replacement).write_bytes(Path(users).read_bytes() + f"# {rewrites}\n".encode())
                os.chmod(replacement, 0o644)
                os.replace(replacement, users)
            else:
                content = Path(users).read_bytes()
                with open(users, "r+b") as f:
                    f.truncate(0)
                    f.write(content)
            rewrites += 1
            time.sleep(0.02)
    finally:
        stop.set()
        for t in clients:
            t.join()

    by_label: dict[str, list] = {}
    for label, _, status in results.values():
        by_label.setdefault(label, []).append(status)
    summary = {label: {s: v.count(s) for s in set(v)} for label, v in by_label.items()}
    assert len(results) >= 400
    assert {status for _, _, status in results.values()} <= {200, 407}, summary
    assert set(by_label["eve"]) == {407} and set(by_label["alice, wrong password"]) == {407}, summary
    assert 200 in by_label["alice"], summary

    # Per child: a refusal of alice lasts until that child's next check at most.
    alice_by_child: dict[str, list] = {}
    # Each access log line follows its response: wait until all are there.
    # Only lines with a sequence number count; the set-up's requests have none.
    per_child_log = proxy.root / "logs" / "per_child_log"

    def numbered() -> list[list[str]]:
        fields = [line.split() for line in per_child_log.read_text().splitlines()]
        return [f for f in fields if f[1] != "-"]

    deadline = time.monotonic() + 10
    while len(numbered()) < len(results) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid, seq, _ in numbered():
        if results[int(seq)][0] == "alice":
            alice_by_child.setdefault(pid, []).append(results[int(seq)][1:])
    longest = {pid: round(longest_refusal(timeline), 3) for pid, timeline in alice_by_child.items()}
    print(f"\n[{mpm}] {rewrites} rewrites during {len(results)} requests: {summary}; "
          f"longest refusal of alice per child: {longest} s")
    assert sum(len(v) for v in alice_by_child.values()) == len(by_label["alice"])
    assert max(longest.values()) <= REQUIRED_SECONDS, "a half-written file was served past the next check"
