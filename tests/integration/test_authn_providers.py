"""Any credential store httpd knows, behind ProxyBasic: AuthProxyProvider.

DBM files (htdbm, mod_authn_dbm), SQL (mod_dbd with sqlite3,
mod_authn_dbd) and LDAP (a real slapd started here, mod_ldap +
mod_authnz_ldap) are asked through httpd's own authn providers, in the
order AuthProxyProvider lists them, with an <AuthnProviderAlias> too. The
module's credential cache sits in front of them: a directory user costs one
bind per AuthProxyCacheTimeout for the whole server, a refused password is
never remembered. A store that cannot answer fails closed with 500 and
recovers when it is back. Authorization through those stores (Require
ldap-group, dbd-group, dbm-group) keeps proxy semantics: 407 and a fresh
challenge on a reverse proxy. The LDAP, SQL and DBM cases run the recipes
of docs/recipes.md as written.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from directory_servers import GROUPS, PEOPLE, Slapd, dbm_users, have, sqlite_users
from harness import assert_challenged, basic, doc_recipe, get, proxy_status

REALM = "Stores"


def scope(backend, *lines: str, require: str = "valid-user", path: str = "/p") -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return (f"<Location {path}>\n    ProxyPass {backend.url}{path}\n    AuthType ProxyBasic\n"
            f'    AuthName "{REALM}"\n{body}    Require {require}\n</Location>\n')


def assert_store_decides(h, member: tuple[str, str], outsider: tuple[str, str], realm: str, path: str) -> None:
    """The store admits @p member, refuses a wrong password and an unknown
    user, and the group requirement refuses @p outsider (a valid user of the
    store) with a fresh proxy challenge."""
    user, password = member
    assert proxy_status(h, user, password, path) == 200
    assert proxy_status(h, user, "wrong", path) == 407
    assert proxy_status(h, "nobody", "x", path) == 407
    assert_challenged(get(h, path, basic(*outsider)), realm)


def run_store_recipe(make_httpd, backend, name: str, replace: dict, extra: str = ""):
    """httpd running the recipe @p name of docs/recipes.md as written, with
    this test's backend and stores in place of the page's."""
    recipe = doc_recipe(name, {"http://app.internal:8080": backend.url, **replace})
    return make_httpd(extra + recipe.config, extra_modules=recipe.modules, minimal=True)


# ---------------------------------------------------------------- DBM and SQL

def test_dbm_recipe_users_and_groups(make_httpd, backend, server_root):
    users = Path(server_root) / "users.dbm"
    dbm_users(users, {"dana": ("dana-pw", "admins"), "dirk": ("dirk-pw", "")})
    h = run_store_recipe(make_httpd, backend, "store-dbm", {"/etc/apache2/proxy-users.dbm": str(users)})
    assert_store_decides(h, ("dana", "dana-pw"), ("dirk", "dirk-pw"), "Staff Proxy", "/app/x")


def test_sql_recipe_users_and_groups_through_mod_dbd(make_httpd, backend, server_root):
    db = Path(server_root) / "users.sqlite"
    sqlite_users(db, {"sam": "sam-pw", "sue": "sue-pw"}, {"admins": ["sam"]})
    h = run_store_recipe(make_httpd, backend, "store-dbd", {"/var/lib/proxy/users.sqlite": str(db)})
    assert_store_decides(h, ("sam", "sam-pw"), ("sue", "sue-pw"), "Staff Proxy", "/app/x")


# ---------------------------------------------------------------- LDAP

pytestmark_ldap = pytest.mark.skipif(not have("slapd", "ldapadd"), reason="slapd and ldap-utils are not installed")

LDAP_MODULES = ["ldap", "authnz_ldap"]


@pytest.fixture
def slapd(server_root):
    s = Slapd(Path(server_root) / "slapd").start()
    s.add_tree({"lara": "lara-pw", "leo": "leo-pw"}, {"admins": ["lara"]})
    yield s
    s.stop()


def ldap_lines(slapd, url_suffix: str = "?uid") -> list[str]:
    # mod_ldap's own caches off: what the directory sees is what mod_auth_proxy asks.
    return [f"AuthLDAPURL {slapd.url}/{PEOPLE}{url_suffix}"]


LDAP_NO_CACHE = "LDAPCacheEntries 0\nLDAPOpCacheEntries 0\n"


@pytestmark_ldap
def test_ldap_recipe_users_and_an_ldap_group_refusal_gets_a_proxy_challenge(make_httpd, backend, slapd):
    h = run_store_recipe(make_httpd, backend, "store-ldap", {
        "ldap://ldap.example.com": slapd.url,
        "ou=people,dc=example,dc=com": PEOPLE,
        "cn=proxy-users,ou=groups,dc=example,dc=com": f"cn=admins,{GROUPS}",
    }, extra=LDAP_NO_CACHE)
    assert_store_decides(h, ("lara", "lara-pw"), ("leo", "leo-pw"), "Corporate login", "/app/x")
    # Logged as for the user file: what fail2ban's stock filter reads.
    assert h.wait_for_log(r'user lara: authentication failure for "/app/x": Password Mismatch \(APX01007\)')
    assert h.wait_for_log(r'user nobody not found in ldap: "/app/x" \(APX01005\)')


@pytest.mark.parametrize("mpm", ["event", "prefork"])
@pytestmark_ldap
def test_a_directory_user_costs_one_bind_per_ttl_for_the_whole_server(make_httpd, backend, slapd, mpm):
    processes = "StartServers 3\nMinSpareServers 3\n" if mpm == "prefork" else ""
    h = make_httpd(LDAP_NO_CACHE + processes + scope(backend, "AuthProxyProvider ldap", *ldap_lines(slapd)),
                   extra_modules=LDAP_MODULES, mpm=mpm)
    before = slapd.binds("lara")
    assert [proxy_status(h, "lara", "lara-pw") for _ in range(12)] == [200] * 12   # fresh connections: every child
    assert slapd.binds("lara") - before == 1


@pytestmark_ldap
def test_a_refused_password_is_never_cached(make_httpd, backend, slapd):
    h = make_httpd("AuthProxyThrottle Off\n" + LDAP_NO_CACHE +
                   scope(backend, "AuthProxyProvider ldap", *ldap_lines(slapd)), extra_modules=LDAP_MODULES)
    before = slapd.binds("leo")
    assert [proxy_status(h, "leo", "wrong") for _ in range(3)] == [407] * 3
    assert slapd.binds("leo") - before == 3      # asked every time
    assert proxy_status(h, "leo", "leo-pw") == 200
    assert slapd.binds("leo") - before == 4


@pytestmark_ldap
def test_providers_are_asked_in_order_and_an_alias_works(make_httpd, backend, slapd, make_users):
    users = make_users({"fred": "fred-pw", "lara": "file-password-of-lara"})
    alias = (f"<AuthnProviderAlias ldap corp>\n    AuthLDAPURL {slapd.url}/{PEOPLE}?uid\n</AuthnProviderAlias>\n")
    h = make_httpd(LDAP_NO_CACHE + alias + scope(backend, "AuthProxyProvider file corp", f"AuthUserFile {users}"),
                   extra_modules=LDAP_MODULES)
    assert proxy_status(h, "fred", "fred-pw") == 200                  # the file knows him
    assert proxy_status(h, "leo", "leo-pw") == 200                    # only the directory does
    # The file knows lara: it answers, the directory is not asked.
    before = slapd.binds("lara")
    assert proxy_status(h, "lara", "file-password-of-lara") == 200
    assert proxy_status(h, "lara", "lara-pw") == 407
    assert slapd.binds("lara") == before
    assert proxy_status(h, "nobody", "x") == 407
    assert h.wait_for_log(rf"user nobody not found in {re.escape(users)}, corp")


@pytestmark_ldap
def test_a_directory_that_is_down_fails_closed_then_recovers(make_httpd, backend, slapd):
    h = make_httpd(LDAP_NO_CACHE + "LDAPConnectionTimeout 2\nLDAPRetries 0\n" +
                   scope(backend, "AuthProxyProvider ldap", *ldap_lines(slapd)), extra_modules=LDAP_MODULES)
    assert proxy_status(h, "lara", "lara-pw") == 200
    slapd.stop()
    h.mark_log()
    assert proxy_status(h, "leo", "leo-pw") == 500
    assert h.wait_for_log(r"APX01016: authn provider ldap could not check user leo")
    slapd.start()
    deadline = time.monotonic() + 20
    while proxy_status(h, "leo", "leo-pw") != 200:
        assert time.monotonic() < deadline, "never recovered after slapd came back"
        time.sleep(0.2)


# ---------------------------------------------------------------- configuration

@pytest.mark.parametrize("line, message", [
    ("AuthProxyProvider nosuch", "no authn provider 'nosuch' that checks passwords"),
    # The modules to load, named as Debian ships them: there is no mod_authn_ldap.
    ("AuthProxyProvider ldap", "(load mod_authnz_ldap and mod_ldap before this directive)"),
    ("AuthProxyProvider dbm", "(load mod_authn_dbm before this directive)"),
    ("AuthProxyProvider dbd", "(load mod_authn_dbd and mod_dbd before this directive)"),
    ("AuthProxyProvider myalias", "define <AuthnProviderAlias ... myalias>"),
    ("AuthProxyProvider", "name at least one provider"),
    ("AuthProxyProvider file file file file file file file file file", "at most 8 providers"),
])
def test_unknown_providers_fail_configtest(make_httpd, backend, server_root, line, message):
    h = make_httpd(scope(backend, line, f"AuthUserFile {server_root}/users"), start=False)
    result = h.configtest()
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_works_without_mod_auth_basic(make_httpd, backend, server_root):
    users = Path(server_root) / "users.dbm"
    dbm_users(users, {"dana": ("dana-pw", "")})
    h = make_httpd(scope(backend, "AuthProxyProvider dbm", f"AuthDBMUserFile {users}"),
                   extra_modules=["authn_dbm"], without_modules=["auth_basic"])
    assert "auth_basic_module" not in h.conf_file.read_text()
    assert proxy_status(h, "dana", "dana-pw") == 200
    assert proxy_status(h, "dana", "wrong") == 407
