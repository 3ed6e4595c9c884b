"""htpasswd files as operators really have them, and files that cannot be used.

Entries come from the real htpasswd (-n prints one without touching a file);
the files around them are written the way people edit them by hand.
"""

import os
import re
import subprocess
import time

import pytest

from harness import FAST_BCRYPT, basic, get, htpasswd, proxied_location, proxy_status, run_user, token


def entry(user, password, *flags):
    """One "user:hash" line as htpasswd writes it."""
    out = subprocess.run(["htpasswd", "-nb", *flags, user, password], check=True, capture_output=True)
    return out.stdout.decode("utf-8").strip()


def bcrypt(user, password):
    return entry(user, password, *FAST_BCRYPT)


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)


def serve(make_httpd, backend, users, extra="", **options):
    return make_httpd(extra + proxied_location("/p", backend.url, users), **options)


def test_comments_and_blank_lines_are_skipped(make_httpd, backend, server_root):
    users = f"{server_root}/users"
    lines = [
        "# Proxy users -- managed with htpasswd, see ticket OPS-1234",
        "",
        "   ",
        bcrypt("alice", "alice-pw"),
        "# bob left in March:",
        "#" + bcrypt("bob", "bob-pw"),
        "\t",
        entry("carol", "carol-pw", "-m"),
        "",
    ]
    write(users, "\n".join(lines).encode())
    h = serve(make_httpd, backend, users)
    assert proxy_status(h, "alice", "alice-pw") == 200
    assert proxy_status(h, "carol", "carol-pw") == 200
    assert proxy_status(h, "#bob", "bob-pw") == 407, "a commented-out entry is not a user"
    assert proxy_status(h, "bob", "bob-pw") == 407


def test_crlf_line_endings_are_accepted(make_httpd, backend, server_root):
    users = f"{server_root}/users"
    lines = [
        "# edited on Windows",
        bcrypt("alice", "alice-pw"),
        entry("bob", "bob-pw", "-s"),
        entry("carol", "carol-pw", "-m"),
        entry("dave", "dave-pw", "-5"),
    ]
    write(users, "\r\n".join(lines).encode() + b"\r\n")
    h = serve(make_httpd, backend, users)
    # The \r never becomes part of a hash: every format still verifies.
    assert proxy_status(h, "alice", "alice-pw") == 200
    assert proxy_status(h, "bob", "bob-pw") == 200
    assert proxy_status(h, "carol", "carol-pw") == 200
    assert proxy_status(h, "dave", "dave-pw") == 200
    assert proxy_status(h, "dave", "dave-pw\r") == 407


def test_last_line_without_newline_is_read(make_httpd, backend, server_root):
    users = f"{server_root}/users"
    write(users, (bcrypt("alice", "alice-pw") + "\n" + bcrypt("bob", "bob-pw")).encode())
    h = serve(make_httpd, backend, users)
    assert proxy_status(h, "bob", "bob-pw") == 200


def test_duplicate_user_first_entry_wins(make_httpd, backend, server_root):
    users = f"{server_root}/users"
    lines = [bcrypt("alice", "first-pw"), bcrypt("bob", "bob-pw"), bcrypt("alice", "second-pw")]
    write(users, ("\n".join(lines) + "\n").encode())
    h = serve(make_httpd, backend, users)
    assert proxy_status(h, "alice", "first-pw") == 200
    assert proxy_status(h, "alice", "second-pw") == 407
    assert h.wait_for_log(rf"{re.escape(users)} line 3: duplicate entry for user 'alice' ignored")


def test_a_line_longer_than_any_htpasswd_writes_ends_the_file_as_in_stock_httpd(make_httpd, backend, server_root):
    """mod_authn_file stops reading at a line longer than its 8 KiB buffer,
    so a user after one is refused by stock httpd; here the cap is 4 KiB
    (htpasswd's lines stay under 400 bytes), and what comes after it is
    refused too: never admitted where stock would refuse."""
    users = f"{server_root}/users"
    long_name = "u" * 2000           # htpasswd stops at 255; other tools do not
    lines = [
        bcrypt("alice", "alice-pw"),
        long_name + ":" + bcrypt("u", "long-pw").split(":", 1)[1],
        "# " + "x" * 3000,
        bcrypt("carol", "carol-pw"),
        "#" + "y" * 100000,
        bcrypt("bob", "bob-pw"),
    ]
    write(users, ("\n".join(lines) + "\n").encode())
    h = serve(make_httpd, backend, users)
    assert proxy_status(h, "alice", "alice-pw") == 200
    assert proxy_status(h, long_name, "long-pw") == 200
    assert proxy_status(h, long_name[:-1], "long-pw") == 407
    assert proxy_status(h, "carol", "carol-pw") == 200
    assert proxy_status(h, "bob", "bob-pw") == 407, "a user after an over-long line is refused, as by stock httpd"
    assert re.search(rf"APX02031: {re.escape(users)}: 1 malformed lines ignored: line 5 longer than 4096 bytes, "
                     rf"where reading stopped", h.log()), h.log()


def test_utf8_user_names_and_passwords(make_httpd, backend, make_users):
    users = make_users({"jürgen": "pässwörd"})
    make_users({"用户": "密码"}, ("-m",))
    assert "jürgen:$2y$" in open(users, encoding="utf-8").read()
    h = serve(make_httpd, backend, users)
    # The header carries base64 of the UTF-8 bytes (RFC 7617 charset="UTF-8").
    assert proxy_status(h, "jürgen", "pässwörd") == 200
    assert proxy_status(h, "用户", "密码") == 200
    assert proxy_status(h, "jürgen", "passwort") == 407
    assert proxy_status(h, "jurgen", "pässwörd") == 407
    # Same text, other bytes (ISO-8859-1): not the same user.
    assert get(h, "/p/x", "Basic " + token("jürgen:pässwörd".encode("latin-1"))).status == 407


def test_missing_user_file_fails_closed_with_500_naming_the_file(make_httpd, backend, server_root):
    users = f"{server_root}/does-not-exist"
    h = serve(make_httpd, backend, users)
    assert h.wait_for_log(rf"APX02020: user file {re.escape(users)} cannot be opened by {run_user() or '.*'}: "
                           r"No such file or directory")
    h.mark_log()
    r = get(h, "/p/x", basic("alice", "secret"))
    assert r.status == 500
    assert r.header("X-Backend") is None
    assert re.search(rf"\[auth_proxy:error\].*APX01004: user file {re.escape(users)} cannot be opened",
                     h.log_since())
    # Without credentials the client is challenged; nobody gets through either way.
    assert get(h, "/p/x").status == 407


@pytest.mark.parametrize("mpm,reload", [("event", True), ("worker", True), ("prefork", True), ("event", False)],
                         ids=["event", "worker", "prefork", "event_without_reload"])
def test_user_file_unreadable_by_the_server_user_fails_closed(make_httpd, backend, users, mpm, reload):
    # Run as root, httpd's parent could read a mode-000 file; the children that
    # serve requests run as www-data and cannot. They must not admit anyone.
    os.chmod(users, 0)
    h = serve(make_httpd, backend, users, "" if reload else "AuthProxyReloadInterval 0\n", mpm=mpm)
    r = get(h, "/p/x", basic("alice", "secret"))
    assert r.status == 500
    assert r.header("X-Backend") is None
    assert re.search(rf"APX01004: user file {re.escape(users)} cannot be opened by {run_user()}: Permission denied",
                     h.log())


def test_user_file_made_unreadable_while_running_fails_closed(make_httpd, backend, users):
    h = serve(make_httpd, backend, users)
    assert proxy_status(h, "alice", "secret") == 200
    os.chmod(users, 0)
    deadline = time.time() + 5
    while time.time() < deadline and proxy_status(h, "alice", "secret") != 500:
        time.sleep(0.1)
    assert proxy_status(h, "alice", "secret") == 500
    assert re.search(rf"user file {re.escape(users)} cannot be opened by {run_user()}: Permission denied", h.log())


def test_relative_user_file_resolves_against_server_root(make_httpd, backend, authn_file):
    h = serve(make_httpd, backend, "conf/proxy.htpasswd", start=False, authn_file=authn_file)
    htpasswd(h.root / "conf" / "proxy.htpasswd", "alice", "secret", *FAST_BCRYPT, create=True)
    h.start()
    assert proxy_status(h, "alice", "secret") == 200
    assert h.wait_for_log(rf"loaded {re.escape(str(h.root))}/conf/proxy\.htpasswd: 1 users")
