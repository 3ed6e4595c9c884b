"""The verified-credential cache, seen from outside: directives and effect.

Issue 4: after a successful hash verification the next request with the
same credentials skips the hash (AuthProxyCacheTimeout, AuthProxyCacheEntries;
0 disables); a password change misses the cache at once; failures are never
cached, so a guesser always pays the full hash.

Whether a request paid for the hash is counted, not timed: the module logs
every verification at debug level (APX01010 when the password matched,
APX01015 when it did not), and an identical repeat of a failure, refused
without hashing, as APX01013. bench/ measures what that is worth.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import time

import pytest

from harness import basic, htpasswd, proxied_location

MPMS = ["event", "worker", "prefork"]
SLOW = ("-B", "-C", "10")        # the hash the cache exists to avoid
REQUESTS = 20


def reverse_proxy(users: str, backend, extra: str = "") -> str:
    # MaxKeepAliveRequests 0: a KeepAlive client stays on one connection,
    # so on one child process and its cache.
    return f"MaxKeepAliveRequests 0\n{extra}\n" + proxied_location("/p", backend.url, users, "Cache")


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

    def run(self, user: str, password: str, n: int) -> set:
        return {self.timed(user, password)[0] for _ in range(n)}

    def close(self) -> None:
        self.conn.close()


def verified(h, user: str = "alice") -> int:
    """Hash verifications of @p user's password that matched, since mark_log()."""
    return h.log_since().count(f"user {user}: password verified against its")


def mismatched(h, user: str = "alice") -> int:
    """Hash verifications of @p user's password that did not match, since mark_log()."""
    return h.log_since().count(f"user {user}: password checked against its")


@pytest.fixture
def slow_users(make_users):
    return make_users({"alice": "alice-pw"}, SLOW)


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
    # Past the limit the message names it.
    ("AuthProxyReloadInterval", "99999999", "is not a number of seconds from 0 to 31622400"),
    ("AuthProxyCacheTimeout", "31622401", "is not a number of seconds from 0 to 31622400"),
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
    cached.mark_log(), uncached.mark_log()
    client_on, client_off = KeepAlive(cached), KeepAlive(uncached)
    on_status = client_on.run("alice", "alice-pw", REQUESTS)
    off_status = client_off.run("alice", "alice-pw", REQUESTS)
    client_on.close(), client_off.close()
    print(f"\n[{mpm}] {REQUESTS} requests: {verified(cached)} verifications with the cache, "
          f"{verified(uncached)} without")
    assert on_status == {200} and off_status == {200}
    assert verified(cached) == 1
    assert verified(uncached) == REQUESTS


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
    h.mark_log()
    client = KeepAlive(h)
    statuses = client.run("alice", "alice-pw", 4)
    client.close()
    assert statuses == {200}
    assert verified(h) == 4         # every request pays for the hash


@pytest.mark.parametrize("mpm", MPMS)
def test_wrong_passwords_are_never_cached(make_httpd, backend, slow_users, mpm):
    h = make_httpd(reverse_proxy(slow_users, backend), mpm=mpm)
    h.mark_log()
    client = KeepAlive(h)
    assert client.timed("alice", "alice-pw")[0] == 200                    # pays the hash
    assert client.run("alice", "alice-pw", 5) == {200}                    # free
    guesses = {client.timed("alice", f"guess{i}")[0] for i in range(5)}   # each pays again
    repeats = client.run("alice", "guess0", 5)                            # known to fail: no hash
    client.close()
    log = h.log_since()
    print(f"\n[{mpm}] matched {verified(h)}, mismatched {mismatched(h)}, "
          f"repeats refused unhashed {log.count('Password Mismatch, the same as before (APX01013)')}")
    assert guesses == {407} and repeats == {407}
    assert verified(h) == 1
    assert mismatched(h) == 5, "a distinct wrong password skipped the hash"
    assert log.count("Password Mismatch, the same as before (APX01013)") == 5


def test_cached_credential_expires_after_the_timeout(make_httpd, backend, slow_users):
    h = make_httpd(reverse_proxy(slow_users, backend, extra="AuthProxyCacheTimeout 1"))
    h.mark_log()
    client = KeepAlive(h)
    assert client.run("alice", "alice-pw", 2) == {200}
    assert verified(h) == 1
    time.sleep(1.3)                 # the TTL itself is what is tested: let it run out
    assert client.timed("alice", "alice-pw")[0] == 200
    client.close()
    assert verified(h) == 2, "the entry outlived AuthProxyCacheTimeout"


def test_changed_password_misses_the_cache_at_once(make_httpd, backend, slow_users):
    """The cache key covers the stored hash: once the reload sees the new
    hash, the old password is refused although it was cached (default TTL 300 s)."""
    h = make_httpd(reverse_proxy(slow_users, backend))
    h.mark_log()
    client = KeepAlive(h)
    assert client.run("alice", "alice-pw", 2) == {200}
    assert verified(h) == 1, "the old password was not cached"

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
    password is hashed at most once per connection that raced the first."""
    h = make_httpd(reverse_proxy(slow_users, backend), mpm=mpm)
    h.mark_log()
    out = subprocess.run(["ab", "-q", "-n", "400", "-c", "16", "-P", "alice:alice-pw", f"{h.url}/p/x"],
                         capture_output=True, text=True, timeout=300).stdout
    complete = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    print(f"\n[{mpm}] ab -n 400 -c 16: {verified(h)} verifications")
    assert complete == 400 and failed == 0, out
    assert "Non-2xx responses" not in out, out
    assert 1 <= verified(h) <= 16
