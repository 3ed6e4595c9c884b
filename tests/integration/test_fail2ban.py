"""fail2ban sees every failed login, and no successful one.

Debian's /etc/fail2ban/filter.d/apache-auth.conf allows only an "AH\\d+: "
prefix before "user X: authentication failure ..." or "user X not found";
mod_auth_proxy words its failed-login lines that way and puts its own APX
number at the end. The real fail2ban-regex reads the real error log here,
with the stock filter and with the one we ship (conf/fail2ban-filter-auth-proxy.conf),
which also leaves out authorization refusals; the shipped jail is checked
by fail2ban-client itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT, basic, get, proxied_location

FILTER = "/etc/fail2ban/filter.d/apache-auth.conf"
OUR_FILTER = REPO_ROOT / "conf" / "fail2ban-filter-auth-proxy.conf"
OUR_JAIL = REPO_ROOT / "conf" / "fail2ban-auth-proxy.local"

pytestmark = pytest.mark.skipif(shutil.which("fail2ban-regex") is None,
                                reason="fail2ban is not installed (scripts/test installs it)")


def installed_filter(directory) -> Path:
    """Our filter beside copies of the stock files it includes, as it sits in
    /etc/fail2ban/filter.d once installed (fail2ban resolves includes there)."""
    d = Path(directory) / "filter.d"
    d.mkdir(parents=True, exist_ok=True)
    for name in ("common.conf", "apache-common.conf"):
        shutil.copy(f"/etc/fail2ban/filter.d/{name}", d / name)
    shutil.copy(OUR_FILTER, d / "auth-proxy.conf")
    return d / "auth-proxy.conf"


def fail2ban_regex(log_file, filter_file=FILTER) -> tuple[int, list[str]]:
    """(matched line count, the matched lines) as fail2ban-regex reports them."""
    out = subprocess.run(["fail2ban-regex", "--print-all-matched", str(log_file), str(filter_file)],
                         capture_output=True, text=True, timeout=120).stdout
    counts = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out)
    assert counts, out
    block = out.split("|- Matched line(s):", 1)[1].split("`-", 1)[0] if "|- Matched line(s):" in out else ""
    matched = [line[1:].strip() for line in block.splitlines() if line.startswith("|  ")]
    return int(counts.group(3)), matched


@pytest.mark.parametrize("which", ["stock apache-auth", "ours"])
def test_the_filter_matches_every_failed_login_and_no_success(make_httpd, backend, make_users, server_root,
                                                              which):
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

    filter_file = FILTER if which.startswith("stock") else installed_filter(server_root)
    matched, lines = fail2ban_regex(h.error_log, filter_file)
    print(f"\nfail2ban-regex: {matched} matched of {len(h.log().splitlines())} lines")
    for line in lines:
        print("  " + line)
    assert matched == len(failed)
    assert all("[client 127.0.0.1:" in line for line in lines)
    assert not any("verified" in line or "(APX01011)" in line or "APX01003" in line for line in lines)
    # One line per lockout, worded so that fail2ban does not count it a second time.
    assert re.search(r"APX01011: client 127\.0\.0\.1 locked out for 600 s after 5 distinct failed logins",
                     h.log())


def test_our_filter_leaves_out_users_refused_a_destination(make_httpd, backend, make_users, server_root):
    """A user who logged in but whom Require refused a URL (AH01631), or an
    address Require refused (AH01630), made no password guess: the stock
    filter counts both, ours neither."""
    users = make_users({"alice": "alice-pw", "bob": "bob-pw"})
    h = make_httpd(
        proxied_location("/app", backend.url, users, "Proxy", require="user alice")
        + proxied_location("/intranet", backend.url, users, "Proxy", require="ip 192.0.2.1"))
    for _ in range(3):
        # A user refused: a new challenge, as mod_auth_basic answers it; an address refused: 403.
        assert get(h, "/app/blocked", basic("bob", "bob-pw")).status == 407
        assert get(h, "/intranet/x", basic("alice", "alice-pw")).status == 403
    assert get(h, "/app/x", basic("alice", "wrong")).status == 407                   # one real guess
    log = h.log()
    assert "AH01631" in log and "AH01630" in log, log

    stock, _ = fail2ban_regex(h.error_log)
    ours, lines = fail2ban_regex(h.error_log, installed_filter(server_root))
    assert stock == 7      # the stock filter: six refused destinations and the guess
    assert ours == 1, lines
    assert "APX01007" in lines[0]


def test_a_user_name_cannot_hide_a_failed_login_from_our_filter(make_httpd, backend, make_users, server_root):
    """The user name is the client's to choose; it comes after the module's tag, so no name makes a
    failed login look like another line."""
    users = make_users({"alice": "alice-pw"})
    h = make_httpd(proxied_location("/app", backend.url, users, "Proxy"))
    # (Basic user names hold no ':'.)
    names = ["x authorization failure for", 'x" (AH01631)', "[authz_core] y", "z (APX01003)"]
    for i, name in enumerate(names):
        assert get(h, "/app/x", basic(name, f"guess{i}")).status == 407
    ours, lines = fail2ban_regex(h.error_log, installed_filter(server_root))
    assert ours == len(names), lines


def test_the_shipped_jail_bans_every_port_with_our_filter(tmp_path):
    """fail2ban-client reads the shipped jail and filter as Debian installs them
    (jail.d/auth-proxy.local, filter.d/auth-proxy.conf): the jail is valid, uses our
    filter and bans the address on every port, the forward proxy's 3128 included."""
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    shutil.copy(OUR_FILTER, conf / "filter.d" / "auth-proxy.conf")
    (conf / "jail.d").mkdir(exist_ok=True)
    for old in (conf / "jail.d").iterdir():
        old.unlink()  # the distro's defaults-debian.conf enables sshd with a systemd backend
    shutil.copy(OUR_JAIL, conf / "jail.d" / "auth-proxy.local")
    log = tmp_path / "error.log"
    log.write_text("")
    text = (conf / "jail.d" / "auth-proxy.local").read_text().replace("/var/log/apache2/error.log", str(log))
    (conf / "jail.d" / "auth-proxy.local").write_text(text)
    result = subprocess.run(["fail2ban-client", "-c", str(conf), "-d"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    dump = result.stdout
    assert "['add', 'auth-proxy'" in dump, dump
    assert "apache-auth" not in dump      # our filter, not the stock one
    assert re.search(r"'auth-proxy', 'action', 'iptables-allports'", dump), dump
