"""The guessing throttle against many real source addresses.

Every request here comes from the address its socket is bound to, not from
a header: all of 127.0.0.0/8 is local on Linux, and a local route for an
IPv6 documentation prefix on lo (with net.ipv6.ip_nonlocal_bind) lets one
client bind any address in it. The throttle's table is made small, so that
these clients fill it: a full table must neither lift a lockout nor let a
client guess uncounted.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import basic, free_port, proxied_location
from test_metrics import STATUS_PAGES, counters

# Sources for the IPv6 tests: 4,096 /48s, routed to lo while the tests run.
PREFIX = "2001:db8:7000::/36"
MPMS = ["event", "prefork"]


def _ipv6_route(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "-6", "route", *args, "local", PREFIX, "dev", "lo"], capture_output=True, text=True)


@pytest.fixture(scope="module")
def ipv6_sources():
    """PREFIX routed to lo and bindable; both undone afterwards."""
    disabled = Path("/proc/sys/net/ipv6/conf/all/disable_ipv6")
    if disabled.exists() and disabled.read_text().strip() == "1":
        pytest.skip("IPv6 is disabled on this host")
    sysctl = Path("/proc/sys/net/ipv6/ip_nonlocal_bind")
    before = sysctl.read_text().strip()
    if shutil.which("ip") is None:
        pytest.fail("the ip command (iproute2) is missing: scripts/test installs it")
    _ipv6_route("del")  # left by an interrupted run
    added = _ipv6_route("add")
    if added.returncode != 0:
        pytest.skip(f"cannot route {PREFIX} to lo (needs root): {added.stderr.strip()}")
    try:
        sysctl.write_text("1\n")
        yield PREFIX
    finally:
        sysctl.write_text(before + "\n")
        _ipv6_route("del")


def v6(block48: int, sub56: int = 0, sub64: int = 0, host: int = 1) -> str:
    """An address in PREFIX: its /48 (0-4095), its /56 in that /48 and its /64 in that /56 (0-255 each), its
    interface id."""
    return f"2001:db8:{0x7000 + block48:x}:{sub56 << 8 | sub64:x}::{host:x}"


class Server:
    """httpd listening on 127.0.0.1 and [::1], and a client that sends from any local source."""

    def __init__(self, h) -> None:
        self.h = h

    def status(self, source: str, user: str, password: str, want_headers: bool = False):
        """The status of one GET with @p user's Basic credentials from @p source (and its headers if asked)."""
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
        target = ("::1", self.h.port6) if family == socket.AF_INET6 else ("127.0.0.1", self.h.port)
        request = (f"GET /p/x HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: {basic(user, password)}\r\n"
                   f"Connection: close\r\n\r\n").encode()
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.bind((source, 0))
            s.connect(target)
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        code = int(head[0].split()[1])
        if not want_headers:
            return code
        return code, {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}

    def many(self, requests, threads: int = 16) -> list[int]:
        """Statuses of (source, user, password) triples, sent from @p threads threads at once."""
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda r: self.status(*r), requests))


def start(make_httpd, users, backend, mpm: str, extra: str) -> Server:
    port6 = free_port()
    body = (f"Listen [::1]:{port6}\n{STATUS_PAGES}{extra}\n" + proxied_location("/p", backend.url, users, "Proxy"))
    h = make_httpd(body, mpm=mpm, extra_modules=["status"])
    h.port6 = port6
    return Server(h)


def wrong_guesses_verified(h) -> int:
    """Wrong passwords the module checked against alice's hash, server-wide."""
    return counters(h)["AuthProxyFailuresWrongPassword"]


@pytest.fixture
def users(make_users):
    return make_users({"alice": "alice-pw"})


@pytest.mark.parametrize("mpm", MPMS)
def test_a_lockout_survives_wrong_guesses_from_thousands_of_other_ipv4_addresses(make_httpd, backend, users,
                                                                                 mpm):
    # 16 counters (4 buckets of 4): 1,500 addresses are far more than fit.
    srv = start(make_httpd, users, backend, mpm, "AuthProxyThrottleFailures 3\nAuthProxyThrottleEntries 16\n")
    locked = "127.0.0.2"
    assert [srv.status(locked, "alice", f"guess{i}") for i in range(3)] == [407] * 3
    assert srv.status(locked, "alice", "alice-pw") == 429
    others = [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(1500)]
    statuses = []
    for start_at in range(0, len(others), 250):
        batch = others[start_at:start_at + 250]
        # Each other address tries three wrong passwords: as many as the policy lets one address try.
        statuses += srv.many([(a, "alice", f"other{n}") for n in range(3) for a in batch])
        assert srv.status(locked, "alice", "alice-pw") == 429, f"the lockout was lifted after {start_at} addresses"
    assert set(statuses) <= {407, 429}
    code, headers = srv.status("127.9.9.9", "alice", "alice-pw", want_headers=True)
    assert code == 429  # a new client whose failure could not be counted is refused, not let guess
    assert int(headers["retry-after"]) > 0
    # 16 records of at most 3 failures each: the table never bought anyone more.
    assert wrong_guesses_verified(srv.h) <= 16 * 3
    assert counters(srv.h)["AuthProxyThrottleFull"] > 0
    assert "APX01040: throttle table full" in srv.h.log()


@pytest.mark.parametrize("mpm", MPMS)
def test_forty_thousand_ipv6_64s_never_lift_a_lockout_nor_buy_guesses(make_httpd, backend, users, ipv6_sources,
                                                                      mpm):
    entries, limit = 256, 3
    srv = start(make_httpd, users, backend, mpm,
                f"AuthProxyThrottleFailures {limit}\nAuthProxyThrottleEntries {entries}\n")
    locked = v6(4095, 255, 7, 0x1234)
    assert [srv.status(locked, "alice", f"guess{i}") for i in range(limit)] == [407] * limit
    assert srv.status(locked, "alice", "alice-pw") == 429
    # 40,000 /64s, each in a /56 of its own, about 10 to each of 4,095 /48s (no /48 reaches its limit).
    sources = [v6(i % 4095, i // 4095) for i in range(40000)]
    statuses = []
    for start_at in range(0, len(sources), 4000):
        statuses += srv.many([(s, "alice", f"from-{s}") for s in sources[start_at:start_at + 4000]])
        assert srv.status(locked, "alice", "alice-pw") == 429, f"the lockout was lifted after {start_at} sources"
    assert len(statuses) == 40000 and set(statuses) <= {407, 429}
    assert srv.status(locked, "alice", "alice-pw") == 429
    # Every counted failure sits in a /64 record that outlives the test, at
    # most `limit` to a record: the 40,000 sources verified no more than the
    # table could count.
    verified = wrong_guesses_verified(srv.h)
    assert verified <= entries * limit, f"{verified} wrong guesses verified"
    assert statuses.count(429) >= 40000 - entries


@pytest.mark.parametrize("mpm", MPMS)
def test_the_holder_of_a_48_is_locked_out_after_its_budget(make_httpd, backend, users, ipv6_sources, mpm):
    # The documented defaults: a /56 gets 3 times, a /48 10 times an address's budget.
    srv = start(make_httpd, users, backend, mpm, "AuthProxyThrottleFailures 3\n")
    srv.h.mark_log()
    # One wrong guess from each of 60 /64s, every one in a /56 of its own: no /64 or /56 is near its limit.
    statuses = [srv.status(v6(7, sub), "alice", f"g{sub}") for sub in range(60)]
    assert statuses == [407] * 30 + [429] * 30
    assert srv.status(v6(7, 200, 9, 99), "alice", "alice-pw") == 429  # the whole /48, the right password too
    assert "APX01011: client 2001:db8:7007::/48 locked out for 600 s after 30 distinct failed logins" in \
        srv.h.log_since()
    assert "too many failed logins from this address's /48" in srv.h.log_since()
    # A /56: its ninth failure locks it, and only it.
    assert [srv.status(v6(8, 1, sub64), "alice", f"h{sub64}") for sub64 in range(1, 13)] == [407] * 9 + [429] * 3
    assert srv.status(v6(8, 2), "alice", "alice-pw") == 200
    assert wrong_guesses_verified(srv.h) == 30 + 9
    # Other /48s, and IPv4, are unaffected.
    assert srv.status(v6(9), "alice", "alice-pw") == 200
    assert srv.status("127.0.0.1", "alice", "alice-pw") == 200
