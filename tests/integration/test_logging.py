"""The error log tells an operator who failed and why, like mod_auth_basic's AH01617/AH01618.

Failures are logged at error level with the client address, the user and
the reason. Failed logins are worded as mod_auth_basic words them, with the
module's APX number at the end, so that fail2ban's stock apache-auth filter
reads them (test_fail2ban.py); other lines start with their APX number. A
client's first request without credentials (the normal start of every
exchange) is not an error.
"""

import re

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
