"""Configuration as operators write it: configtest catches a scope without a user
file, and the module leaves httpd's own Basic authentication alone."""

import os
import re
import shutil

import pytest

from harness import assert_challenged, basic, curl, proxied_location, run_user

SCOPE_WITHOUT_FILE = """    AuthType ProxyBasic
    AuthName "Login Authentication"
    Require valid-user
"""


def test_configtest_reports_a_location_without_user_file(make_httpd, backend, authn_file):
    h = make_httpd(f"<Location /app>\n    ProxyPass {backend.url}/app\n{SCOPE_WITHOUT_FILE}</Location>\n",
                   start=False, authn_file=authn_file)
    result = h.configtest()
    assert result.returncode != 0
    line = h.config_text().splitlines().index("<Location /app>") + 3  # the AuthType line
    assert re.search(rf"APX03002: AuthType ProxyBasic at {re.escape(str(h.conf_file))}:{line} \(/app\) "
                     r"has no AuthUserFile", result.stderr), result.stderr


def test_configtest_reports_a_forward_proxy_without_user_file(make_httpd, authn_file):
    h = make_httpd(f'ProxyRequests On\n<Proxy "*">\n{SCOPE_WITHOUT_FILE}</Proxy>\n',
                   start=False, authn_file=authn_file)
    result = h.configtest()
    assert result.returncode != 0
    assert "APX03002" in result.stderr


def test_configtest_passes_when_the_scope_has_a_user_file(make_httpd, backend, users, authn_file):
    h = make_httpd(proxied_location("/app", backend.url, users), start=False, authn_file=authn_file)
    result = h.configtest()
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stderr
    assert "APX03002" not in result.stderr


def test_configtest_passes_when_an_enclosing_scope_provides_the_user_file(make_httpd, backend, users, authn_file):
    h = make_httpd(f"""
<Location />
    AuthUserFile {users}
</Location>
<Location /app>
    ProxyPass {backend.url}/app
{SCOPE_WITHOUT_FILE}</Location>
""", start=False, authn_file=authn_file)
    result = h.configtest()
    assert result.returncode == 0, result.stderr
    assert "APX03002" not in result.stderr
    # ...and at run time the inherited file is the one used.
    h.start()
    assert curl(f"{h.url}/app").status == 407
    assert curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{h.url}/app").status == 200


def test_configtest_passes_when_the_main_server_provides_the_user_file_to_a_virtual_host(make_httpd, users):
    h = make_httpd(f"""
<Location />
    AuthUserFile {users}
</Location>
<VirtualHost 127.0.0.1:80>
    ServerName proxy.example
    <Location /app>
{SCOPE_WITHOUT_FILE}    </Location>
</VirtualHost>
""", start=False)
    result = h.configtest()
    assert result.returncode == 0, result.stderr
    assert "APX03002" not in result.stderr


def test_stock_basic_authentication_next_to_proxybasic_is_unchanged(make_httpd, backend, users):
    h = make_httpd(f"""
{proxied_location("/app", backend.url, users)}<Location /members>
    AuthType Basic
    AuthName "Members"
    AuthBasicProvider file
    AuthUserFile {users}
    Require valid-user
</Location>
<Location /legacy>
    ProxyPass {backend.url}/legacy
    AuthType Basic
    AuthName "Legacy"
    AuthUserFile {users}
    Require valid-user
</Location>
""", start=False, authn_file=True)
    (h.root / "htdocs" / "members").mkdir()
    (h.root / "htdocs" / "members" / "index.html").write_text("members only\n")
    h.start()

    # mod_auth_basic + mod_authn_file answer their own scope exactly as without us.
    r = curl(f"{h.url}/members/")
    assert r.status == 401
    assert r.headers.get("www-authenticate") == ['Basic realm="Members"']
    assert r.header("Proxy-Authenticate") is None
    assert curl("--user", "alice:wrong", f"{h.url}/members/").status == 401
    r = curl("--user", "alice:secret", f"{h.url}/members/")
    assert r.status == 200
    assert r.body == b"members only\n"

    # A stock Basic scope around a ProxyPass keeps stock httpd's 401 (no 407 there).
    r = curl(f"{h.url}/legacy")
    assert r.status == 401
    assert r.headers.get("www-authenticate") == ['Basic realm="Legacy"']
    assert curl("--user", "alice:secret", f"{h.url}/legacy").status == 200

    # And the ProxyBasic scope in the same server still speaks proxy authentication.
    assert_challenged(curl(f"{h.url}/app"))
    assert curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{h.url}/app").status == 200


# ------------------------------------------------ what would otherwise fail only at the first request

def test_configtest_reports_a_scope_without_auth_name(make_httpd, backend, users):
    """Without AuthName every request would get 500 (APX01001)."""
    h = make_httpd(f"<Location /app>\n    ProxyPass {backend.url}/app\n    AuthType ProxyBasic\n"
                   f"    AuthUserFile {users}\n    Require valid-user\n</Location>\n", start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert re.search(r"APX03020: AuthType ProxyBasic at \S+:\d+ \(/app\) has no AuthName: add AuthName",
                     result.stderr), result.stderr


def test_an_auth_name_from_an_enclosing_scope_is_enough(make_httpd, backend, users):
    h = make_httpd(f'<Location /app>\n    AuthName "Outer"\n</Location>\n'
                   f"<Location /app/inner>\n    ProxyPass {backend.url}/app/inner\n    AuthType ProxyBasic\n"
                   f"    AuthUserFile {users}\n    Require valid-user\n</Location>\n", start=False)
    result = h.configtest()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("typo", ["ProxyBasci", "proxybasik", "Proxy-Basic", "ProxBasic", "ProxyBasics"])
def test_configtest_reports_a_mistyped_auth_type(make_httpd, backend, users, typo):
    """Otherwise the first request gets 500 (AH01796) and nothing said why at start."""
    h = make_httpd(proxied_location("/app", backend.url, users).replace("AuthType ProxyBasic", f"AuthType {typo}"),
                   start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert f"AuthType {typo}: no module provides this auth type; did you mean ProxyBasic?" in result.stderr, \
        result.stderr


@pytest.mark.parametrize("auth_type", ["Basic", "basic", "Digest", "None", "ProxyBasic"])
def test_other_auth_types_pass_configtest(make_httpd, backend, users, auth_type):
    h = make_httpd(proxied_location("/app", backend.url, users).replace("AuthType ProxyBasic", f"AuthType {auth_type}"),
                   start=False, extra_modules=["auth_digest"])
    result = h.configtest()
    assert result.returncode == 0, result.stderr


def test_configtest_reports_proxy_basic_without_mod_proxy(make_httpd, users):
    """Without mod_proxy nothing is proxied, and the scope would answer 401, not 407."""
    h = make_httpd(f'<Location /app>\n    AuthType ProxyBasic\n    AuthName "App"\n    AuthUserFile {users}\n'
                   f"    Require valid-user\n</Location>\n",
                   start=False, without_modules=["proxy", "proxy_http"])
    assert "mod_proxy.so" not in h.config_text()
    result = h.configtest()
    assert result.returncode != 0
    assert re.search(r"APX03021: AuthType ProxyBasic at \S+ \(/app\) needs mod_proxy", result.stderr), result.stderr
    # AuthProxyChallenge proxy asks for 407 on requests that are not proxied: fine without mod_proxy.
    h2 = make_httpd(h.body.replace("    Require valid-user", "    AuthProxyChallenge proxy\n    Require valid-user"),
                    start=False, without_modules=["proxy", "proxy_http"])
    assert h2.configtest().returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run httpd with a User of its own")
def test_configtest_warns_of_a_user_file_the_user_cannot_open(make_httpd, backend, server_root, users):
    """Missing, or readable by root only: said at configtest, naming the User (still Syntax OK: the
    file may be put in place before the start, and only its scopes fail, closed)."""
    missing = os.path.join(server_root, "missing")
    secret_dir = os.path.join(server_root, "root-only")
    os.mkdir(secret_dir, 0o700)
    root_only = os.path.join(secret_dir, "users")
    shutil.copy(users, root_only)
    body = "".join(proxied_location(f"/{name}", backend.url, path)
                   for name, path in (("ok", users), ("missing", missing), ("secret", root_only)))
    result = make_httpd(body, start=False).configtest()
    assert result.returncode == 0 and "Syntax OK" in result.stderr, result.stderr
    who = run_user()
    assert f"APX03023: AuthUserFile {missing} cannot be opened by {who}: No such file or directory" in result.stderr
    assert f"APX03023: AuthUserFile {root_only} cannot be opened by {who}: Permission denied" in result.stderr
    assert f"AuthUserFile {users} " not in result.stderr
