"""Counters operators watch: mod_status's server-status (?auto and HTML) and the Prometheus page.

Every kind of request moves its own counter and nothing else, read back
through the real mod_status; the counters live in shared memory, so any
server process answers for the whole server, and a change of a user file is
one reload however many processes pick it up. The Prometheus page
(SetHandler auth-proxy-metrics) passes the real ``promtool check metrics``.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import time

import pytest

from harness import RawHttp, basic, curl, get, htpasswd

STATUS_PAGES = """
<Location /server-status>
    SetHandler server-status
</Location>
<Location /metrics>
    SetHandler auth-proxy-metrics
</Location>
"""

# Each step of a test comes from an address of its own (mod_remoteip), so
# that only the step that means to trip the throttle does.
REMOTEIP = """
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
"""

FAMILIES = {
    "auth_proxy_admitted_total": "counter",
    "auth_proxy_failures_total": "counter",
    "auth_proxy_cache_hits_total": "counter",
    "auth_proxy_cache_misses_total": "counter",
    "auth_proxy_cache_evictions_total": "counter",
    "auth_proxy_verifications_total": "counter",
    "auth_proxy_verification_seconds_total": "counter",
    "auth_proxy_lockouts_total": "counter",
    "auth_proxy_throttle_full_total": "counter",
    "auth_proxy_reloads_total": "counter",
    "auth_proxy_reload_failures_total": "counter",
    "auth_proxy_last_reload_duration_seconds": "gauge",
    "auth_proxy_last_reload_timestamp_seconds": "gauge",
    "auth_proxy_user_file_usable": "gauge",
    "auth_proxy_users": "gauge",
    "auth_proxy_index_bytes": "gauge",
    "auth_proxy_verify_slots": "gauge",
    "auth_proxy_verify_slots_in_use": "gauge",
    "auth_proxy_verify_slots_peak": "gauge",
    "auth_proxy_verify_waiting": "gauge",
    "auth_proxy_verify_waits_total": "counter",
    "auth_proxy_verify_wait_seconds_total": "counter",
    "auth_proxy_verify_shed_total": "counter",
}


@pytest.fixture
def users(server_root):
    """Two bcrypt users (so a dummy verification is bcrypt), one {SHA} user, one unusable entry."""
    path = f"{server_root}/users"
    htpasswd(path, "alice", "alice-pw", "-B", "-C", "4")
    htpasswd(path, "bob", "bob-pw", "-B", "-C", "4")
    htpasswd(path, "sam", "sam-pw", "-s")
    with open(path, "a") as f:
        f.write("plain:not-a-hash\n")
    return path


def config(users: str, backend, extra: str = "") -> str:
    return f"""{REMOTEIP}{STATUS_PAGES}{extra}
<Location /p>
    ProxyPass {backend.url}/p
    AuthType ProxyBasic
    AuthName "Metrics"
    AuthUserFile {users}
    Require valid-user
</Location>
"""


def request(h, header: str | None = None, client: str = "192.0.2.1") -> int:
    """One proxied request on a fresh connection (so prefork spreads them over its children)."""
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
    try:
        headers = {"X-Forwarded-For": client, "Connection": "close"}
        if header is not None:
            headers["Proxy-Authorization"] = header
        conn.request("GET", "/p/x", headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def parse_status(text: str) -> dict:
    """The AuthProxy lines of mod_status's ?auto, as numbers."""
    out = {}
    for line in text.splitlines():
        if line.startswith("AuthProxy"):
            key, value = line.split(": ", 1)
            out[key] = float(value) if "." in value else int(value)
    return out


def counters(h) -> dict:
    """The AuthProxy lines of mod_status's ?auto, as numbers."""
    r = curl(h.url + "/server-status?auto", "-H", "Connection: close")
    assert r.status == 200
    return parse_status(r.body.decode())


def file_key(users: str) -> str:
    return f"({users})"


def moves(before: dict, after: dict) -> dict:
    """The counters that moved, by how much: times, per-file figures and the verification slots'
    gauges left out (checked apart, and in test_verify_limit.py)."""
    return {k: after[k] - before[k] for k in after
            if "Seconds" not in k and not k.endswith(")") and not k.startswith("AuthProxyVerifySlots")
            and after[k] != before[k]}


def wait_for(h, condition, timeout: float = 10.0) -> dict:
    """Reads the counters until @p condition holds for them; fails after @p timeout."""
    deadline = time.monotonic() + timeout
    while True:
        now = counters(h)
        if condition(now):
            return now
        assert time.monotonic() < deadline, f"counters never got there: {now}"
        time.sleep(0.05)


def test_each_kind_of_request_moves_its_own_counter(make_httpd, backend, users):
    h = make_httpd(config(users, backend, "AuthProxyThrottleFailures 4\n"), extra_modules=["status", "remoteip"])
    start = counters(h)
    assert set(v for k, v in start.items() if "(" not in k and k != "AuthProxyVerifySlots") == {0}, start
    assert start["AuthProxyVerifySlots"] == max(1, os.cpu_count() - 1)  # the default leaves a core free
    assert start["AuthProxyUsers" + file_key(users)] == 4
    assert start["AuthProxyIndexBytes" + file_key(users)] > os.path.getsize(users)

    steps = [
        ("no credentials: the challenge", "192.0.2.1", [None], 407,
         {"AuthProxyFailuresNoCredentials": 1}),
        ("a malformed header", "192.0.2.2", ["Basic !!!"], 407,
         {"AuthProxyFailuresMalformed": 1}),
        ("an unknown user: a dummy bcrypt verification", "192.0.2.3", [basic("mallory", "x")], 407,
         {"AuthProxyFailuresUnknownUser": 1, "AuthProxyVerificationsBcrypt": 1}),
        ("a wrong password", "192.0.2.4", [basic("alice", "wrong")], 407,
         {"AuthProxyFailuresWrongPassword": 1, "AuthProxyVerificationsBcrypt": 1, "AuthProxyCacheMisses": 1}),
        ("the same wrong password again: not hashed", "192.0.2.4", [basic("alice", "wrong")], 407,
         {"AuthProxyFailuresRepeated": 1, "AuthProxyCacheMisses": 1}),
        ("an unusable entry: a dummy verification", "192.0.2.5", [basic("plain", "not-a-hash")], 407,
         {"AuthProxyFailuresUnusableEntry": 1, "AuthProxyVerificationsBcrypt": 1}),
        ("admitted, verified", "192.0.2.6", [basic("sam", "sam-pw")], 200,
         {"AuthProxyAdmitted": 1, "AuthProxyVerificationsSha1": 1, "AuthProxyCacheMisses": 1}),
        ("admitted from the cache", "192.0.2.7", [basic("sam", "sam-pw")], 200,
         {"AuthProxyAdmitted": 1, "AuthProxyCacheHits": 1}),
        ("four distinct failures lock the address out", "192.0.2.8",
         [basic("bob", f"guess{i}") for i in range(4)], 407,
         {"AuthProxyFailuresWrongPassword": 4, "AuthProxyVerificationsBcrypt": 4, "AuthProxyCacheMisses": 4,
          "AuthProxyLockoutsAddress": 1}),
        ("a locked-out address, even with the right password", "192.0.2.8", [basic("bob", "bob-pw")], 429,
         {"AuthProxyFailuresThrottled": 1}),
    ]
    for what, client, headers, status, expected in steps:
        before = counters(h)
        assert [request(h, header, client) for header in headers] == [status] * len(headers), what
        after = counters(h)
        assert moves(before, after) == expected, what
        # Time is counted with each verification.
        for fmt in ("Bcrypt", "Sha1"):
            ran = after[f"AuthProxyVerifications{fmt}"] > before[f"AuthProxyVerifications{fmt}"]
            timed = after[f"AuthProxyVerificationSeconds{fmt}"] > before[f"AuthProxyVerificationSeconds{fmt}"]
            assert ran == timed, (what, fmt)


def test_a_change_of_the_user_file_is_one_reload_and_a_removed_file_one_failure(make_httpd, backend, users):
    # prefork, several children and the index builder: each of them sees every change.
    h = make_httpd(config(users, backend, "StartServers 4\nMinSpareServers 4\n"),
                   extra_modules=["status", "remoteip"], mpm="prefork")
    start = counters(h)
    assert start["AuthProxyReloads"] == 0 and start["AuthProxyReloadFailures"] == 0
    assert start["AuthProxyLastReloadTimestampSeconds"] == 0          # none yet: 0, not a time
    assert start["AuthProxyUserFileUsable" + file_key(users)] == 1
    changed_at = time.time()

    # The real tool, editing the file in place (harness.htpasswd() would chmod it too: a change of its own).
    subprocess.run(["htpasswd", "-b", "-B", "-C", "4", users, "carol", "carol-pw"], check=True, capture_output=True)
    reloaded = wait_for(h, lambda c: c["AuthProxyReloads"] >= 1
                        and c["AuthProxyUsers" + file_key(users)] == 5)
    # Every child serves carol now; the change still counts once.
    assert all(request(h, basic("carol", "carol-pw"), f"192.0.2.{i}") == 200 for i in range(1, 13))
    after = counters(h)
    assert after["AuthProxyReloads"] == 1, re.findall(r".*reloaded.*", h.log())
    assert after["AuthProxyReloadFailures"] == 0
    # A duration, and a time: when the change was put in use.
    assert 0 < reloaded["AuthProxyLastReloadDurationSeconds"] < 5
    assert changed_at - 1 <= reloaded["AuthProxyLastReloadTimestampSeconds"] <= time.time() + 1

    os.rename(users, users + ".away")
    failed = wait_for(h, lambda c: c["AuthProxyReloadFailures"] >= 1)
    assert request(h, basic("carol", "carol-pw"), "192.0.2.50") == 500
    after = counters(h)
    assert after["AuthProxyReloadFailures"] == 1, after
    assert after["AuthProxyReloads"] == 1
    assert after["AuthProxyFailuresFileUnusable"] == failed["AuthProxyFailuresFileUnusable"] + 1
    # Unusable is not the same as empty.
    assert (after["AuthProxyUserFileUsable" + file_key(users)], after["AuthProxyUsers" + file_key(users)]) == (0, 0)

    os.rename(users + ".away", users)
    wait_for(h, lambda c: c["AuthProxyReloads"] >= 2)
    assert all(request(h, basic("carol", "carol-pw"), f"192.0.2.{i}") == 200 for i in range(60, 72))
    after = counters(h)
    assert (after["AuthProxyReloads"], after["AuthProxyReloadFailures"]) == (2, 1), after
    assert after["AuthProxyUserFileUsable" + file_key(users)] == 1


def test_an_empty_user_file_is_usable_and_a_missing_one_is_not(make_httpd, backend, server_root):
    """auth_proxy_users is 0 for both; auth_proxy_user_file_usable tells them apart."""
    empty, missing = f"{server_root}/empty", f"{server_root}/missing"
    open(empty, "w").close()
    os.chmod(empty, 0o644)
    scopes = "".join(f"""
<Location /{name}>
    ProxyPass {backend.url}/{name}
    AuthType ProxyBasic
    AuthName "Metrics"
    AuthUserFile {path}
    Require valid-user
</Location>
""" for name, path in (("p", empty), ("q", missing)))
    h = make_httpd(REMOTEIP + STATUS_PAGES + scopes, extra_modules=["remoteip"])
    assert get(h, "/p/x", basic("alice", "x")).status == 407
    assert get(h, "/q/x", basic("alice", "x")).status == 500
    text = curl(h.url + "/metrics").body.decode()
    assert f'\nauth_proxy_user_file_usable{{file="{empty}"}} 1\n' in text, text
    assert f'\nauth_proxy_users{{file="{empty}"}} 0\n' in text
    assert f'\nauth_proxy_user_file_usable{{file="{missing}"}} 0\n' in text, text
    assert f'\nauth_proxy_users{{file="{missing}"}} 0\n' in text


def test_every_child_answers_for_the_whole_server(make_httpd, backend, users, server_root):
    pids = f"{server_root}/status_pids"
    extra = f'StartServers 4\nMinSpareServers 4\nCustomLog {pids} "%P %U"\n'
    h = make_httpd(config(users, backend, extra), extra_modules=["status", "remoteip"], mpm="prefork")
    assert [request(h, None, f"192.0.2.{i}") for i in range(20)] == [407] * 20
    assert [request(h, basic("sam", "sam-pw"), f"192.0.2.{i}") for i in range(10)] == [200] * 10
    # Each status request on a connection kept open: a prefork child serves
    # one connection at a time, so each is answered by another child.
    connections = [http.client.HTTPConnection("127.0.0.1", h.port, timeout=30) for _ in range(3)]
    try:
        readings = []
        for conn in connections:
            conn.request("GET", "/server-status?auto")
            resp = conn.getresponse()
            assert resp.status == 200
            readings.append(parse_status(resp.read().decode()))
    finally:
        for conn in connections:
            conn.close()
    deadline = time.monotonic() + 10
    while len(answered := [line.split()[0] for line in open(pids) if "/server-status" in line]) < 3:
        assert time.monotonic() < deadline, answered
        time.sleep(0.05)
    assert len(set(answered)) == 3, answered
    for c in readings:
        assert (c["AuthProxyFailuresNoCredentials"], c["AuthProxyAdmitted"]) == (20, 10), c
        assert c["AuthProxyCacheHits"] + c["AuthProxyCacheMisses"] == 10
        assert c["AuthProxyVerificationsSha1"] == c["AuthProxyCacheMisses"] >= 1


def test_counters_survive_a_graceful_restart_and_start_from_zero_after_a_stop(make_httpd, backend, users):
    h = make_httpd(config(users, backend), extra_modules=["status", "remoteip"])
    assert request(h, basic("sam", "sam-pw")) == 200
    assert request(h, basic("sam", "wrong"), "192.0.2.2") == 407
    h.graceful()
    after = counters(h)
    assert (after["AuthProxyAdmitted"], after["AuthProxyFailuresWrongPassword"]) == (1, 1), after
    h.stop()
    h.start()
    after = counters(h)
    assert (after["AuthProxyAdmitted"], after["AuthProxyFailuresWrongPassword"]) == (0, 0), after


def test_the_html_status_page_has_the_section(make_httpd, backend, users):
    h = make_httpd(config(users, backend), extra_modules=["status", "remoteip"])
    assert request(h, basic("alice", "alice-pw")) == 200
    page = curl(h.url + "/server-status").body.decode()
    assert "<h2>Proxy authentication (mod_auth_proxy)</h2>" in page
    assert "<tr><td>Admitted</td><td>1</td></tr>" in page
    assert f"<tr><td>Users: {users}</td><td>4</td></tr>" in page
    notable = curl(h.url + "/server-status?notable").body.decode()
    assert "Admitted: 1<br />" in notable


def test_the_prometheus_page_passes_promtool_without_mod_status(make_httpd, backend, users):
    h = make_httpd(config(users, backend), extra_modules=["remoteip"])
    assert request(h, basic("alice", "alice-pw")) == 200
    assert request(h, basic("alice", "wrong"), "192.0.2.2") == 407
    r = curl(h.url + "/metrics")
    assert r.status == 200
    assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    text = r.body.decode()
    check = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True, timeout=60)
    assert check.returncode == 0 and check.stdout == b"" and check.stderr == b"", check
    for family, kind in FAMILIES.items():
        assert text.count(f"# TYPE {family} {kind}\n") == 1, family
        assert text.count(f"# HELP {family} ") == 1, family
    assert "\nauth_proxy_admitted_total 1\n" in text
    assert '\nauth_proxy_failures_total{reason="wrong_password"} 1\n' in text
    assert '\nauth_proxy_verifications_total{format="bcrypt"} 2\n' in text
    assert f'\nauth_proxy_users{{file="{users}"}} 4\n' in text
    # HEAD: the headers alone; anything else but GET is refused.
    with RawHttp(h.port) as raw:
        raw.send(b"HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head = raw.read_response(head=True)
        assert raw.closed_by_peer() and raw.buffer == b"", "a body after HEAD"
    assert head.status == 200
    assert head.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    post = curl("-X", "POST", "-d", "x", h.url + "/metrics")
    assert post.status == 405
    assert set(re.split(r",\s*", post.header("allow") or "")) >= {"GET", "HEAD"}, post.headers
    assert "APX01019" not in h.log()
