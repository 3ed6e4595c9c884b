"""fail2ban's stock apache-auth filter sees every failed login, and no successful one.

Debian's /etc/fail2ban/filter.d/apache-auth.conf allows only an "AH\\d+: "
prefix before "user X: authentication failure ..." or "user X not found";
mod_auth_proxy words its failed-login lines that way and puts its own APX
number at the end. The real fail2ban-regex reads the real error log here,
with no filter of our own installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness import basic, get, proxied_location

FILTER = "/etc/fail2ban/filter.d/apache-auth.conf"

pytestmark = pytest.mark.skipif(shutil.which("fail2ban-regex") is None,
                                reason="fail2ban is not installed (scripts/test installs it)")


def fail2ban_regex(log_file) -> tuple[int, list[str]]:
    """(matched line count, the matched lines) as fail2ban-regex reports them."""
    out = subprocess.run(["fail2ban-regex", "--print-all-matched", str(log_file), FILTER],
                         capture_output=True, text=True, timeout=120).stdout
    counts = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out)
    assert counts, out
    block = out.split("|- Matched line(s):", 1)[1].split("`-", 1)[0] if "|- Matched line(s):" in out else ""
    matched = [line[1:].strip() for line in block.splitlines() if line.startswith("|  ")]
    return int(counts.group(3)), matched


def test_the_stock_apache_auth_filter_matches_every_failed_login_and_no_success(make_httpd, backend,
                                                                                make_users):
    users = make_users({"alice": "alice-pw"})
    with open(users, "a") as f:
        f.write("plain:not-a-hash\n")
    h = make_httpd("AuthProxyThrottleFailures 5\n" + proxied_location("/app", backend.url, users, "Proxy"))

    def send(header=None) -> int:
        return get(h, "/app/x", header).status

    failed = [
        ("wrong password", basic("alice", "guess0"), 407),
        ("another wrong password", basic("alice", "guess1"), 407),
        ("the same wrong password again", basic("alice", "guess1"), 407),
        ("unknown user", basic("mallory", "x"), 407),
        ("unusable entry", basic("plain", "not-a-hash"), 407),
        ("the fifth distinct failure: the address is locked out", basic("alice", "guess2"), 407),
        ("the right password from a locked-out address", basic("alice", "alice-pw"), 429),
    ]
    assert send() == 407                                        # the normal first step: no line
    assert send(basic("alice", "alice-pw")) == 200              # successes: no failure line
    assert send(basic("alice", "alice-pw")) == 200
    assert send("Basic %%%") == 407                             # not a password guess
    for what, header, status in failed:
        assert send(header) == status, what

    matched, lines = fail2ban_regex(h.error_log)
    print(f"\nfail2ban-regex: {matched} matched of {len(h.log().splitlines())} lines")
    for line in lines:
        print("  " + line)
    assert matched == len(failed)
    assert all("[client 127.0.0.1:" in line for line in lines)
    assert not any("verified" in line or "(APX01011)" in line or "APX01003" in line for line in lines)
    # One line per lockout, worded so that fail2ban does not count it a second time.
    assert re.search(r"APX01011: client 127\.0\.0\.1 locked out for 600 s after 5 distinct failed logins",
                     h.log())
