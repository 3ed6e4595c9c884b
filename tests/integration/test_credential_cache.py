"""The verified-credential cache, seen from outside: directives and effect.

Issue 4: after a successful hash verification the next request with the
same credentials skips the hash (AuthProxyCacheTimeout, AuthProxyCacheEntries;
0 disables); a password change misses the cache at once; failures are never
cached, so a guesser always pays the full hash.

The effect is observed with a deliberately slow hash (bcrypt cost 12, about
0.2 s of CPU): a cached request costs well under a millisecond. Whether a
request paid for the hash is judged by the client's wall time and by the
CPU time the httpd processes spent (/proc), which other load on the machine
does not inflate. The margins are generous on purpose: these are functional
checks that the cache is (not) used, not benchmarks (bench/ measures
throughput).
"""

from __future__ import annotations

import http.client
import os
import re
import statistics
import subprocess
import time
from dataclasses import dataclass

import pytest

from harness import basic, htpasswd

MPMS = ["event", "worker", "prefork"]
SLOW = ("-B", "-C", "12")        # the hash the cache exists to avoid
REQUESTS = 20


def reverse_proxy(users: str, backend, extra: str = "") -> str:
    # MaxKeepAliveRequests 0: a KeepAlive client stays on one connection,
    # so on one child process and its cache.
    return f"""
MaxKeepAliveRequests 0
{extra}
<Location /p>
    ProxyPass        {backend.url}/p
    AuthType ProxyBasic
    AuthName "Cache"
    AuthUserFile {users}
    Require valid-user
</Location>
"""


class KeepAlive:
    """One client connection reused for every request, so all of them reach
    the same child process (and so the same per-process cache)."""

    def __init__(self, h) -> None:
        self.h = h
        self.conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=60)

    def timed(self, user: str, password: str) -> tuple[int, float]:
        started = time.perf_counter()
        self.conn.request("GET", "/p/x", headers={"Proxy-Authorization": basic(user, password)})
        resp = self.conn.getresponse()
        resp.read()
        took = time.perf_counter() - started
        # A new connection could land on another child with a cold cache.
        assert not resp.will_close, "the server closed the keep-alive connection"
        return resp.status, took

    def run(self, user: str, password: str, n: int) -> tuple[set, list[float]]:
        statuses, seconds = set(), []
        for _ in range(n):
            status, took = self.timed(user, password)
            statuses.add(status)
            seconds.append(took)
        return statuses, seconds

    def cpu_timed(self, user: str, password: str) -> "Timed":
        """One request, with the CPU time the whole server spent meanwhile."""
        before = server_cpu_seconds(self.h)
        status, seconds = self.timed(user, password)
        return Timed(status, seconds, server_cpu_seconds(self.h) - before)

    def close(self) -> None:
        self.conn.close()


@dataclass
class Timed:
    status: int
    seconds: float      # as the client saw it
    cpu: float          # user + system CPU of all httpd processes

    def __repr__(self) -> str:
        return f"{self.status} in {self.seconds * 1000:.1f} ms ({self.cpu * 1000:.0f} ms CPU)"


def server_cpu_seconds(h) -> float:
    """User + system CPU time of the httpd parent and its children so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue    # exited meanwhile
        # fields[0] is the state (stat field 3): ppid is field 4, utime/stime 14/15.
        if int(entry) == h.proc.pid or int(fields[1]) == h.proc.pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def ms(values) -> str:
    return ", ".join(f"{v * 1000:.1f}" for v in values) + " ms"


@pytest.fixture
def slow_users(server_root):
    path = f"{server_root}/users"
    htpasswd(path, "alice", "alice-pw", *SLOW)
    return path


# ---------------------------------------------------------------- directives

def test_cache_and_reload_directives_are_accepted_at_server_level(make_httpd, backend, slow_users):
    h = make_httpd(reverse_proxy(slow_users, backend, extra="AuthProxyCacheTimeout 60\n"
                                 "AuthProxyCacheEntries 500\nAuthProxyReloadInterval 0.25"), start=False)
    result = h.configtest()
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stderr


@pytest.mark.parametrize("directive, value, message", [
    ("AuthProxyCacheTimeout", "-1", "is not a number of seconds"),
    ("AuthProxyCacheTimeout", "abc", "is not a number of seconds"),
    ("AuthProxyCacheTimeout", "10s", "is not a number of seconds"),
    ("AuthProxyCacheEntries", "-5", "is not a count from 0 to"),
    ("AuthProxyCacheEntries", "abc", "is not a count from 0 to"),
    ("AuthProxyCacheEntries", "1.5", "is not a count from 0 to"),
    ("AuthProxyReloadInterval", "-0.5", "is not a number of seconds"),
])
def test_invalid_cache_value_fails_configtest_with_a_clear_message(make_httpd, backend, slow_users,
                                                                    directive, value, message):
    h = make_httpd(reverse_proxy(slow_users, backend, extra=f"{directive} {value}"), start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert f"{directive}: '{value}' {message}" in result.stderr, result.stderr
    assert "httpd.conf" in result.stderr          # httpd names the file and line


@pytest.mark.parametrize("directive", ["AuthProxyCacheTimeout 60", "AuthProxyCacheEntries 100",
                                       "AuthProxyReloadInterval 1"])
@pytest.mark.parametrize("section, expected", [
    ("VirtualHost 127.0.0.1:8080", "cannot occur within <VirtualHost> section"),
    ("Location /p", "not allowed"),
])
def test_cache_directives_are_refused_inside_sections(make_httpd, backend, slow_users, directive,
                                                      section, expected):
    name = section.split()[0]
    h = make_httpd(reverse_proxy(slow_users, backend) + f"<{section}>\n    {directive}\n</{name}>\n",
                   start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert f"{directive.split()[0]} {expected}" in result.stderr, result.stderr


# ---------------------------------------------------------------- effect
# Each assertion compares with a request that certainly hashed (the first).

@pytest.mark.parametrize("mpm", MPMS)
def test_repeated_credentials_skip_the_hash_unless_the_cache_is_off(make_httpd, backend, slow_users, mpm):
    cached = make_httpd(reverse_proxy(slow_users, backend), mpm=mpm)
    uncached = make_httpd(reverse_proxy(slow_users, backend, extra="AuthProxyCacheTimeout 0"), mpm=mpm)
    client_on, client_off = KeepAlive(cached), KeepAlive(uncached)
    cpu = server_cpu_seconds(cached)
    on_status, on = client_on.run("alice", "alice-pw", REQUESTS)
    cpu_on = server_cpu_seconds(cached) - cpu
    cpu = server_cpu_seconds(uncached)
    off_status, off = client_off.run("alice", "alice-pw", REQUESTS)
    cpu_off = server_cpu_seconds(uncached) - cpu
    client_on.close(), client_off.close()

    print(f"\n[{mpm}] {REQUESTS} requests, cache on:  {sum(on):.3f} s, server CPU {cpu_on:.2f} s, "
          f"first {ms(on[:1])}, median of the rest {ms([statistics.median(on[1:])])}"
          f"\n[{mpm}] {REQUESTS} requests, cache off: {sum(off):.3f} s, server CPU {cpu_off:.2f} s, "
          f"median {ms([statistics.median(off)])}")
    assert on_status == {200} and off_status == {200}
    assert statistics.median(on[1:]) * 5 <= statistics.median(off), f"cache on {ms(on)} vs off {ms(off)}"
    assert cpu_on * 5 <= cpu_off, f"server CPU: cache on {cpu_on:.2f} s, off {cpu_off:.2f} s"


@pytest.mark.parametrize("mpm", MPMS)
def test_one_verification_per_user_for_the_whole_server(make_httpd, backend, slow_users, mpm):
    # Four connections held open at once: under prefork each is served by a
    # process of its own, under event/worker by either of the two children.
    # The cache is one table shared by every child, so alice's password is
    # hashed once, whichever process she reaches.
    processes = "StartServers 4\nMinSpareServers 4\nMaxSpareServers 8\n" if mpm == "prefork" else "StartServers 2\n"
    h = make_httpd('LogFormat "%P %u %>s" with_pid\nCustomLog logs/pid_log with_pid\n' + processes +
                   reverse_proxy(slow_users, backend), mpm=mpm)
    h.mark_log()
    clients = [KeepAlive(h) for _ in range(4)]
    statuses = [c.timed("alice", "alice-pw")[0] for c in clients for _ in range(3)]
    for c in clients:
        c.close()
    assert statuses == [200] * 12
    pid_log = (h.root / "logs" / "pid_log")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_log.read_text().count(" alice 200") < 12:
        time.sleep(0.05)
    pids = {line.split()[0] for line in pid_log.read_text().splitlines() if line.endswith(" alice 200")}
    verified = h.log_since().count("APX01010: user alice: password verified against its bcrypt hash")
    print(f"\n[{mpm}] 12 requests served by processes {sorted(pids)}; bcrypt verifications: {verified}")
    if mpm == "prefork":
        assert len(pids) == 4, "four open connections, four prefork children"
    assert verified == 1


def test_cache_entries_0_turns_the_cache_off(make_httpd, backend, slow_users):
    h = make_httpd(reverse_proxy(slow_users, backend, extra="AuthProxyCacheEntries 0"))
    client = KeepAlive(h)
    first = client.cpu_timed("alice", "alice-pw")
    rest = [client.cpu_timed("alice", "alice-pw") for _ in range(3)]
    client.close()
    print(f"\nAuthProxyCacheEntries 0: first {first}, then {rest}")
    assert {first.status} | {r.status for r in rest} == {200}
    # Every request pays for the hash, like the first one.
    assert min(r.cpu for r in rest) >= 0.5 * first.cpu, rest


@pytest.mark.parametrize("mpm", MPMS)
def test_wrong_passwords_are_never_cached(make_httpd, backend, slow_users, mpm):
    h = make_httpd(reverse_proxy(slow_users, backend), mpm=mpm)
    client = KeepAlive(h)
    first = client.cpu_timed("alice", "alice-pw")                          # pays the hash
    cached = [client.cpu_timed("alice", "alice-pw") for _ in range(5)]     # free
    wrong = [client.cpu_timed("alice", "guess") for _ in range(5)]         # each pays again
    client.close()

    print(f"\n[{mpm}] first {first}\n  cached {cached}\n  wrong password {wrong}")
    assert {w.status for w in wrong} == {407}
    assert statistics.median(w.seconds for w in wrong) >= 5 * statistics.median(c.seconds for c in cached)
    assert sum(w.cpu for w in wrong) >= 0.5 * len(wrong) * first.cpu, "a failed guess skipped the hash"
    assert sum(c.cpu for c in cached) <= 0.2 * len(cached) * first.cpu, "the right password was not cached"


def test_cached_credential_expires_after_the_timeout(make_httpd, backend, slow_users):
    h = make_httpd(reverse_proxy(slow_users, backend, extra="AuthProxyCacheTimeout 1"))
    client = KeepAlive(h)
    first = client.cpu_timed("alice", "alice-pw")
    again = client.cpu_timed("alice", "alice-pw")
    time.sleep(1.3)
    expired = client.cpu_timed("alice", "alice-pw")
    client.close()

    print(f"\nAuthProxyCacheTimeout 1: first {first}, again {again}, after 1.3 s {expired}")
    assert expired.status == 200
    assert again.cpu <= 0.2 * first.cpu, "the second request was not served from the cache"
    assert expired.cpu >= 0.5 * first.cpu, "the entry outlived AuthProxyCacheTimeout"


def test_changed_password_misses_the_cache_at_once(make_httpd, backend, slow_users):
    """The cache key covers the stored hash: once the reload sees the new
    hash, the old password is refused although it was cached (default TTL 300 s)."""
    h = make_httpd(reverse_proxy(slow_users, backend))
    client = KeepAlive(h)
    first = client.cpu_timed("alice", "alice-pw")
    again = client.cpu_timed("alice", "alice-pw")
    assert again.status == 200 and again.cpu <= 0.2 * first.cpu, "the old password was not cached"

    htpasswd(slow_users, "alice", "alice-new", *SLOW)
    changed = time.monotonic()
    while True:
        sent = time.monotonic() - changed     # the refusal itself hashes: count from its start
        if client.timed("alice", "alice-pw")[0] != 200:
            break
        assert sent < 3.0, "the cached old password is still admitted"
    print(f"\nold (cached) password refused {sent:.3f} s after the change")
    assert sent <= 1.2
    assert client.timed("alice", "alice-new")[0] == 200
    assert client.timed("alice", "alice-pw")[0] == 407
    client.close()


@pytest.mark.parametrize("mpm", MPMS)
def test_many_concurrent_clients_share_the_cache(make_httpd, backend, slow_users, mpm):
    """ab, 16 concurrent connections, 400 requests: all admitted, and the
    server spends a small fraction of what 400 slow hashes would cost."""
    h = make_httpd(reverse_proxy(slow_users, backend), mpm=mpm)
    client = KeepAlive(h)
    one_hash = client.cpu_timed("alice", "alice-pw").cpu
    client.close()

    cpu = server_cpu_seconds(h)
    out = subprocess.run(["ab", "-q", "-n", "400", "-c", "16", "-P", "alice:alice-pw", f"{h.url}/p/x"],
                         capture_output=True, text=True, timeout=300).stdout
    spent = server_cpu_seconds(h) - cpu
    complete = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    taken = float(re.search(r"Time taken for tests:\s+([\d.]+)", out).group(1))
    print(f"\n[{mpm}] ab -n 400 -c 16: {taken:.2f} s, server CPU {spent:.2f} s "
          f"(one hash: {one_hash:.2f} s CPU, 400 hashes: {400 * one_hash:.0f} s)")
    assert complete == 400 and failed == 0, out
    assert "Non-2xx responses" not in out, out
    assert spent <= 0.25 * 400 * one_hash, out
