"""The error log tells an operator who failed and why, like mod_auth_basic's AH01617/AH01618.

Failures are logged at error level with the client address, the user and
the reason. Failed logins are worded as mod_auth_basic words them, with the
module's APX number at the end, so that fail2ban's stock apache-auth filter
reads them (test_fail2ban.py); other lines start with their APX number. A
client's first request without credentials (the normal start of every
exchange) is not an error.
"""

import os
import re
import subprocess

import pytest

from harness import basic, get, proxied_location

CLIENT = r"\[client 127\.0\.0\.1:\d+\]"


@pytest.fixture
def proxy(make_httpd, backend, users):
    h = make_httpd(proxied_location("/app", backend.url, users))
    h.mark_log()
    return h


def test_wrong_password_is_logged_with_client_and_user(proxy):
    assert get(proxy, "/app/orders", basic("alice", "guess")).status == 407
    line = proxy.wait_for_log("APX01007")
    assert re.search(rf"\[auth_proxy:error\] .*{CLIENT} user alice: "
                     r'authentication failure for "/app/orders": Password Mismatch \(APX01007\)$', line), line


def test_unknown_user_is_logged_with_client_user_and_file(proxy, users):
    assert get(proxy, "/app/orders", basic("mallory", "secret")).status == 407
    line = proxy.wait_for_log("APX01005")
    assert re.search(rf"\[auth_proxy:error\] .*{CLIENT} user mallory not found in "
                     rf'{re.escape(users)}: "/app/orders" \(APX01005\)$', line), line


def test_malformed_header_is_logged_with_client_and_reason(proxy):
    assert get(proxy, "/app/orders", "Basic not-base64!").status == 407
    line = proxy.wait_for_log("APX01003")
    assert re.search(rf"\[auth_proxy:error\] .*{CLIENT} APX01003: malformed Proxy-Authorization header "
                     r'for "/app/orders": credentials are not valid base64$', line), line


def test_first_request_without_credentials_is_not_an_error(proxy):
    assert get(proxy, "/app/orders").status == 407
    # The access log line is written after the response, and every error
    # line of the request before it: once it is there, nothing is missing.
    assert proxy.wait_for_access_log(r'"GET /app/orders HTTP/1\.1" 407$')
    assert not re.search(r":(error|crit|alert|emerg)\]", proxy.log_since()), proxy.log_since()
    assert "APX01" not in proxy.log_since()


def test_successful_login_is_not_an_error(proxy):
    assert get(proxy, "/app/orders", basic("alice", "secret")).status == 200
    assert proxy.wait_for_access_log(r'alice "GET /app/orders HTTP/1\.1" 200$')
    assert not re.search(r":(error|crit|alert|emerg)\]", proxy.log_since()), proxy.log_since()


# ------------------------------------------------ user files: one line per event for the whole server

PREFORK_CHILDREN = "StartServers 4\nMinSpareServers 4\nMaxSpareServers 6\n"


def error_lines(h, number: str) -> list:
    return [line for line in h.log().splitlines() if "[auth_proxy:error]" in line and f"{number}:" in line]


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_a_broken_user_file_is_one_error_line_for_the_whole_server(make_httpd, backend, users, mpm):
    """APX02001 (not a regular file) and APX02020 (not openable by the User) are said at
    error level once per breakage, by the process that reads for the server, not by each child."""
    h = make_httpd((PREFORK_CHILDREN if mpm == "prefork" else "") + proxied_location("/app", backend.url, users),
                   mpm=mpm)
    assert get(h, "/app/x", basic("alice", "secret")).status == 200

    os.rename(users, users + ".away")
    os.mkdir(users)                       # opens, but is no user file: APX02001
    h.wait_for_log("APX02001", timeout=10)
    assert get(h, "/app/x", basic("alice", "secret")).status == 500
    for i in range(8):                    # every child has had its look
        assert get(h, "/app/x", basic("alice", "secret"), "-H", "Connection: close").status == 500
    assert len(error_lines(h, "APX02001")) == 1, error_lines(h, "APX02001")

    os.rmdir(users)
    os.rename(users + ".away", users)
    h.wait_for_log(r"APX02003: reloaded", timeout=10)
    assert get(h, "/app/x", basic("alice", "secret")).status == 200


def test_an_htdigest_file_is_recognised_and_its_users_not_counted_as_loaded(make_httpd, backend, server_root):
    """Given an htdigest file by mistake: one line that says so, not one warning per user,
    and the load line counts no usable user."""
    digest = os.path.join(server_root, "digest")
    for user in ("alice", "bob", "carol"):
        subprocess.run(["htdigest", *(["-c"] if user == "alice" else []), digest, "Realm", user],
                       input=f"{user}-pw\n{user}-pw\n", text=True, check=True, capture_output=True)
    os.chmod(digest, 0o644)
    h = make_httpd(proxied_location("/app", backend.url, digest))
    assert get(h, "/app/x", basic("alice", "alice-pw")).status == 407
    h.wait_for_log(r"APX02003: loaded")
    log = h.log()
    assert re.search(rf"{re.escape(digest)} line 1: the file looks like an htdigest file \(3 lines of "
                     r"user:realm:hash, as htdigest writes them\)", log), log
    assert "the user can never log in" not in log        # no line per user
    assert re.search(rf"APX02003: loaded {re.escape(digest)}: 0 users in \d+ ms; 3 more can never log in", log), log


def test_unusable_entries_are_named_and_not_counted_as_loaded(make_httpd, backend, make_users):
    users = make_users({"alice": "secret", "bob": "bob-pw"})
    with open(users, "a") as f:
        f.write("plain:not-a-hash\n")
    h = make_httpd(proxied_location("/app", backend.url, users))
    h.wait_for_log(r"APX02003: loaded")
    log = h.log()
    assert re.search(r"line 3: password of user 'plain': .*; the user can never log in", log), log
    assert re.search(rf"APX02003: loaded {re.escape(users)}: 2 users in \d+ ms; 1 more can never log in", log), log
    assert "looks like an htdigest file" not in log
