"""The guessing throttle: distinct failed logins per client address, 429 after the budget.

On by default (20 distinct failures per address within 10 minutes, then a
10-minute lockout). The client address is r->useragent_ip, so mod_remoteip
is honoured: here every request comes from 127.0.0.1 and names the client
it stands for in X-Forwarded-For, as a load balancer in front would.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import free_port, fresh_request, proxied_location, terminate

REMOTEIP = """
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
"""


def scope(users: str, backend, extra: str = "") -> str:
    return REMOTEIP + extra + "\n" + proxied_location("/p", backend.url, users, "Proxy")


def send(h, user: str, password: str, client: str = "192.0.2.10") -> http.client.HTTPResponse:
    """One request on a fresh connection, from @p client as the load balancer says."""
    return fresh_request(h, user, password, headers={"X-Forwarded-For": client})


def status(h, user: str, password: str, client: str = "192.0.2.10") -> int:
    return send(h, user, password, client).status


@pytest.fixture
def users(make_users):
    return make_users({"alice": "alice-pw", "bob": "bob-pw"})


def start(make_httpd, users, backend, extra: str = "", modules=(), **options):
    return make_httpd(scope(users, backend, extra), extra_modules=["remoteip", *modules], **options)


def test_twenty_distinct_failures_then_even_the_right_password_gets_429(make_httpd, backend, users):
    h = start(make_httpd, users, backend)
    h.mark_log()
    assert [status(h, "alice", f"guess{i}") for i in range(20)] == [407] * 20
    r = send(h, "alice", "alice-pw")
    assert r.status == 429
    assert 595 <= int(r.getheader("Retry-After")) <= 600
    assert r.getheader("Proxy-Authenticate") is None
    # Without checking the password: no verification was logged for it.
    assert h.log_since().count("user alice: password verified") == 0
    # One line for the lockout, naming address and user; one failure line per throttled request.
    assert len(re.findall(r"APX01011: client 192\.0\.2\.10 locked out for 600 s after 20 distinct "
                          r"failed logins within 600 s \(last user alice\)", h.log_since())) == 1
    assert status(h, "bob", "bob-pw") == 429
    assert h.log_since().count("too many failed logins from this address") == 2
    # Every other address is unaffected.
    assert status(h, "alice", "alice-pw", client="192.0.2.11") == 200


def test_a_browser_resending_one_stale_password_is_never_locked_out(make_httpd, backend, users):
    h = start(make_httpd, users, backend)
    assert all(status(h, "alice", "last-years-password") == 407 for _ in range(60))
    assert status(h, "alice", "alice-pw") == 200


def test_exempt_addresses_and_a_disabled_throttle_never_lock_out(make_httpd, backend, users):
    h = start(make_httpd, users, backend, "AuthProxyThrottleExempt 10.0.0.0/8 2001:db8::/32\n")
    for client in ("10.1.2.3", "2001:db8::7"):
        assert [status(h, "alice", f"guess{i}", client) for i in range(25)] == [407] * 25
        assert status(h, "alice", "alice-pw", client) == 200
    off = start(make_httpd, users, backend, "AuthProxyThrottle Off\n")
    assert [status(off, "alice", f"guess{i}") for i in range(25)] == [407] * 25
    assert status(off, "alice", "alice-pw") == 200


def test_ipv6_clients_are_counted_per_64(make_httpd, backend, users):
    h = start(make_httpd, users, backend, "AuthProxyThrottleFailures 4\n")
    for i in range(4):
        assert status(h, "alice", f"guess{i}", client=f"2001:db8:1:2::{i + 1}") == 407
    assert status(h, "alice", "alice-pw", client="2001:db8:1:2:ffff::9") == 429
    assert status(h, "alice", "alice-pw", client="2001:db8:1:3::1") == 200


def test_ipv6_prefix_limits_are_set_per_prefix_length(make_httpd, backend, users):
    h = start(make_httpd, users, backend,
              "AuthProxyThrottlePrefix56Failures 0\nAuthProxyThrottlePrefix48Failures 3\n")
    # One failure from each of three /64s in three /56s of 2001:db8:5::/48 (a /56 is not counted at all).
    for i in range(3):
        assert status(h, "alice", f"guess{i}", client=f"2001:db8:5:{i}00::1") == 407
    assert status(h, "alice", "alice-pw", client="2001:db8:5:ffff::1") == 429
    assert status(h, "alice", "alice-pw", client="2001:db8:6::1") == 200


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_counters_are_shared_by_all_processes_and_survive_a_graceful_restart(make_httpd, backend, users, mpm):
    processes = "StartServers 4\nMinSpareServers 4\n" if mpm == "prefork" else "StartServers 2\n"
    h = start(make_httpd, users, backend, processes + "AuthProxyThrottleFailures 6\n", mpm=mpm)
    # Fresh connections: spread over the server's processes.
    assert [status(h, "alice", f"guess{i}") for i in range(6)] == [407] * 6
    assert status(h, "alice", "alice-pw") == 429
    h.graceful()
    assert status(h, "alice", "alice-pw") == 429
    assert status(h, "alice", "alice-pw", client="192.0.2.99") == 200


def test_per_user_lockout_is_off_by_default_and_locks_a_user_from_everywhere_when_on(make_httpd, backend, users):
    h = start(make_httpd, users, backend)
    for a in range(1, 6):
        assert [status(h, "bob", f"try{i}", f"198.51.100.{a}") for i in range(3)] == [407] * 3
    assert status(h, "bob", "bob-pw", "198.51.100.200") == 200

    per_user = start(make_httpd, users, backend, "AuthProxyThrottleUserFailures 3\n")
    for a in range(1, 4):
        assert status(per_user, "bob", f"from{a}", f"198.51.100.{a}") == 407
    r = send(per_user, "bob", "bob-pw", "198.51.100.200")
    assert r.status == 429
    assert r.getheader("Retry-After") is not None
    assert status(per_user, "alice", "alice-pw", "198.51.100.200") == 200


def test_counters_in_an_httpd_socache_of_this_server(make_httpd, backend, users):
    # shmcb (mod_socache_shmcb): the socache API on one server, as for redis below.
    h = start(make_httpd, users, backend, "AuthProxyThrottleSOCache shmcb\nAuthProxyThrottleFailures 5\n",
              modules=["socache_shmcb"])
    assert [status(h, "alice", f"guess{i}") for i in range(5)] == [407] * 5
    assert status(h, "alice", "alice-pw") == 429
    assert status(h, "alice", "alice-pw", client="192.0.2.12") == 200


def test_a_socache_that_drops_entries_never_lifts_a_lockout_this_server_counted(make_httpd, backend, users,
                                                                                server_root):
    # shmcb's smallest cache holds about a hundred counters and makes room by
    # dropping its oldest entries, expired or not: 1,500 failing clients push
    # the locked address's entry out of it.
    h = start(make_httpd, users, backend,
              f"AuthProxyThrottleSOCache shmcb:{server_root}/throttle-cache(8192)\nAuthProxyThrottleFailures 3\n",
              modules=["socache_shmcb"])
    assert [status(h, "alice", f"guess{i}") for i in range(3)] == [407] * 3
    assert status(h, "alice", "alice-pw") == 429
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: status(h, "alice", f"other{i}", f"198.18.{i // 250}.{i % 250 + 1}"),
                                 range(1500)))
    assert set(statuses) == {407}
    # Past the second a server answers from what it last read: the socache is asked again.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert status(h, "alice", "alice-pw") == 429
        time.sleep(0.1)
    assert status(h, "alice", "alice-pw") == 429


@pytest.mark.parametrize("directive, message", [
    ("AuthProxyThrottleFailures 0", "is not a count from 1 to"),
    ("AuthProxyThrottleFailures many", "is not a count from 1 to"),
    ("AuthProxyThrottlePrefix56Failures -1", "is not a count from 0 to 1000000"),
    ("AuthProxyThrottlePrefix48Failures lots", "is not a count from 0 to 1000000"),
    ("AuthProxyThrottleWindow 0.5", "is shorter than one second"),
    ("AuthProxyThrottleLockout -1", "is not a number of seconds"),
    ("AuthProxyThrottleExempt 10.0.0.0/40", "the prefix length is larger than the address"),
    ("AuthProxyThrottleExempt example.com", "is not an IP address or block"),
    ("AuthProxyThrottleSOCache nosuch", "unknown socache provider 'nosuch'"),
    ("AuthProxyThrottle maybe", "must be On or Off"),
])
def test_bad_throttle_settings_fail_configtest_with_a_clear_message(make_httpd, backend, users, directive,
                                                                     message):
    h = start(make_httpd, users, backend, directive + "\n", start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


# ---------------------------------------------------------------- several servers, one redis

class RedisServer:
    """A real redis-server on a loopback port, stopped by its pid."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not answer")
            time.sleep(0.05)

    def keys(self) -> int:
        out = subprocess.run(["redis-cli", "-p", str(self.port), "DBSIZE"], capture_output=True, text=True)
        return int(out.stdout.strip() or 0)

    def stop(self) -> None:
        terminate(self.proc, 10)


@pytest.fixture
def redis(server_root):
    r = RedisServer(Path(server_root))
    yield r
    r.stop()


def test_two_servers_sharing_a_redis_socache_count_failures_together(make_httpd, backend, users, redis):
    extra = f"AuthProxyThrottleSOCache redis:127.0.0.1:{redis.port}\nAuthProxyThrottleFailures 10\n"
    # The same configuration on two servers behind one name.
    a = start(make_httpd, users, backend, extra, modules=["socache_redis"])
    b = start(make_httpd, users, backend, extra, modules=["socache_redis"])
    assert [status(a, "alice", f"guess-a{i}") for i in range(5)] == [407] * 5
    assert [status(b, "alice", f"guess-b{i}") for i in range(5)] == [407] * 5
    assert redis.keys() >= 1
    # Five failures at each: ten together, and B, which saw the tenth, locks out at once.
    assert status(b, "alice", "alice-pw") == 429
    # A answers from what it read from redis for up to a second (requests
    # that succeed stay off the network), then sees the lockout too.
    deadline = time.monotonic() + 10
    while status(a, "alice", "alice-pw") != 429:
        assert time.monotonic() < deadline, "server A never saw the lockout B recorded in redis"
        time.sleep(0.1)
    assert status(b, "alice", "alice-pw", client="192.0.2.77") == 200
    assert status(a, "alice", "alice-pw", client="192.0.2.77") == 200
