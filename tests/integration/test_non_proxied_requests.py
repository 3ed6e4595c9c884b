"""A request in a ProxyBasic scope that httpd serves itself is never open.

A `ProxyPass !` exclusion or a local file is not proxied, so there is no
proxy to authenticate to: it gets an ordinary 401 Basic challenge with the
same realm, reads Authorization and checks it against the same user file.
"""

import pytest

from harness import assert_challenged, basic, curl, proxied_location, proxy_basic_auth

RIGHT = basic("alice", "secret")
WRONG = basic("alice", "wrong")


@pytest.fixture
def excluded(make_httpd, backend, users, authn_file):
    """/app is proxied, /app/static is served from htdocs, all in one ProxyBasic scope."""
    h = make_httpd(proxied_location("/app", backend.url, users) +
                   "<Location /app/static>\n    ProxyPass !\n</Location>\n", start=False, authn_file=authn_file)
    (h.root / "htdocs" / "app" / "static").mkdir(parents=True)
    (h.root / "htdocs" / "app" / "static" / "hello.txt").write_text("served locally\n")
    return h.start()


def assert_www_challenge(r):
    assert_challenged(r, local=True)
    assert b"served locally" not in r.body


def test_excluded_path_without_credentials_gets_401_with_the_same_realm(excluded):
    assert_www_challenge(curl(f"{excluded.url}/app/static/hello.txt"))


def test_excluded_path_with_right_authorization_is_served(excluded):
    r = curl("-H", f"Authorization: {RIGHT}", f"{excluded.url}/app/static/hello.txt")
    assert r.status == 200
    assert r.body == b"served locally\n"
    assert r.header("X-Backend") is None
    assert excluded.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /app/static/hello\.txt HTTP/1\.1" 200$')


def test_excluded_path_with_wrong_password_gets_401(excluded):
    assert_www_challenge(curl("-H", f"Authorization: {WRONG}", f"{excluded.url}/app/static/hello.txt"))


def test_excluded_path_does_not_accept_proxy_authorization(excluded):
    # Nothing is proxied here, so proxy credentials are not the credentials asked for.
    assert_www_challenge(curl("-H", f"Proxy-Authorization: {RIGHT}", f"{excluded.url}/app/static/hello.txt"))


def test_proxied_path_next_to_the_exclusion_still_gets_407(excluded):
    assert_challenged(curl("-H", f"Authorization: {RIGHT}", f"{excluded.url}/app/page"))


def test_local_directory_in_proxybasic_scope_demands_credentials(make_httpd, users):
    h = make_httpd(start=False)
    private = h.root / "htdocs" / "private"
    private.mkdir()
    (private / "report.txt").write_text("quarterly numbers\n")
    h.body = f'<Directory "{private}">\n{proxy_basic_auth(users, "Reports")}</Directory>\n'
    h.start()

    for r in (curl(f"{h.url}/private/report.txt"),
              curl("-H", f"Authorization: {WRONG}", f"{h.url}/private/report.txt")):
        assert_challenged(r, "Reports", local=True)
        assert r.body != b"quarterly numbers\n"

    r = curl("-H", f"Authorization: {RIGHT}", f"{h.url}/private/report.txt")
    assert r.status == 200
    assert r.body == b"quarterly numbers\n"
