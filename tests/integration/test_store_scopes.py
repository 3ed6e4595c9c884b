"""A cached answer is the answer the store would give here, now.

The credential cache and the failure memory stand in for httpd's authn
providers (DBM, LDAP, SQL), whose answers depend on their directives in
the request's scope: the AuthDBMUserFile, the AuthLDAPURL with its filter,
the vhost. So a grant or a failure in one scope says nothing about
another: alice admitted on /a is still asked about on /b, whose DBM file
does not hold her password; a user an LDAP filter keeps out stays out
after logging in where no filter applies. A grant under another name
(AuthLDAPRemoteUserAttribute) is never cached, so REMOTE_USER at the
backend is the directory's name on every request. A password set in the
directory works within seconds from the address that just tried it. And
a hash is keyed on the password bytes it reads: bcrypt reads 72, so 40
passwords sharing those cost one verification, as they get one answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from directory_servers import PEOPLE, Slapd, dbm_users, have
from harness import basic, curl, get, proxy_status

REALM = "Scopes"
LDAP_MODULES = ["ldap", "authnz_ldap"]
# mod_ldap's own caches off: what the directory sees is what mod_auth_proxy asks.
LDAP_NO_CACHE = "LDAPCacheEntries 0\nLDAPOpCacheEntries 0\n"
# Every test runs under both MPMs: the cache and the failure memory are shared by all processes.
pytestmark = pytest.mark.parametrize("mpm", ["event", "prefork"])
needs_ldap = pytest.mark.skipif(not have("slapd", "ldapadd", "ldapmodify"),
                                reason="slapd and ldap-utils are not installed")


def location(backend, path: str, *lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return (f"<Location {path}>\n    ProxyPass {backend.url}{path}\n    AuthType ProxyBasic\n"
            f'    AuthName "{REALM}"\n{body}    Require valid-user\n</Location>\n')


def vhost(h_port: str, name: str, body: str) -> str:
    return f"<VirtualHost 127.0.0.1:{h_port}>\n    ServerName {name}\n{body}</VirtualHost>\n"


@pytest.fixture
def two_dbm_files(server_root):
    """a.dbm knows alice by alice-pw; b.dbm knows her by another password, and carol."""
    a, b = Path(server_root) / "a.dbm", Path(server_root) / "b.dbm"
    dbm_users(a, {"alice": ("alice-pw", "")})
    dbm_users(b, {"alice": ("b-password", ""), "carol": ("carol-pw", "")})
    return a, b


# ---------------------------------------------------------------- DBM scopes

def test_a_grant_on_one_location_does_not_admit_on_another_with_another_dbm_file(make_httpd, backend,
                                                                                two_dbm_files, mpm):
    a, b = two_dbm_files
    h = make_httpd(location(backend, "/a", "AuthProxyProvider dbm", f"AuthDBMUserFile {a}") +
                   location(backend, "/b", "AuthProxyProvider dbm", f"AuthDBMUserFile {b}"),
                   extra_modules=["authn_dbm"], mpm=mpm)
    assert [proxy_status(h, "alice", "alice-pw", "/a/x") for _ in range(3)] == [200] * 3
    assert proxy_status(h, "alice", "alice-pw", "/b/x") == 407
    assert proxy_status(h, "alice", "b-password", "/b/x") == 200
    assert proxy_status(h, "alice", "b-password", "/a/x") == 407


def test_a_failure_on_one_location_is_no_repeat_on_another(make_httpd, backend, two_dbm_files, mpm):
    a, b = two_dbm_files
    h = make_httpd(location(backend, "/a", "AuthProxyProvider dbm", f"AuthDBMUserFile {a}") +
                   location(backend, "/b", "AuthProxyProvider dbm", f"AuthDBMUserFile {b}"),
                   extra_modules=["authn_dbm"], mpm=mpm)
    h.mark_log()
    assert proxy_status(h, "alice", "alice-pw", "/b/x") == 407   # b.dbm: another password
    assert proxy_status(h, "alice", "alice-pw", "/a/x") == 200   # a.dbm: hers, from the same address
    assert "the same as before (APX01013)" not in h.log_since()


def test_a_grant_in_one_vhost_does_not_admit_in_another(make_httpd, backend, two_dbm_files, mpm):
    a, b = two_dbm_files
    h = make_httpd("", start=False, extra_modules=["authn_dbm"], mpm=mpm)
    port = str(h.port)
    h.body = (vhost(port, "a.test", location(backend, "/p", "AuthProxyProvider dbm", f"AuthDBMUserFile {a}")) +
              vhost(port, "b.test", location(backend, "/p", "AuthProxyProvider dbm", f"AuthDBMUserFile {b}")))
    h.start()
    at_a, at_b = {"Host": "a.test"}, {"Host": "b.test"}
    assert [proxy_status(h, "alice", "alice-pw", headers=at_a) for _ in range(2)] == [200, 200]
    assert proxy_status(h, "alice", "alice-pw", headers=at_b) == 407
    assert proxy_status(h, "carol", "carol-pw", headers=at_b) == 200
    assert proxy_status(h, "carol", "carol-pw", headers=at_a) == 407


def test_an_if_section_is_a_scope_of_its_own(make_httpd, backend, two_dbm_files, mpm):
    a, b = two_dbm_files
    h = make_httpd(location(backend, "/p", "AuthProxyProvider dbm", f"AuthDBMUserFile {a}",
                            "<If \"%{QUERY_STRING} == 'b'\">", f"    AuthDBMUserFile {b}", "</If>"),
                   extra_modules=["authn_dbm"], mpm=mpm)
    assert [proxy_status(h, "alice", "alice-pw", "/p/x") for _ in range(2)] == [200, 200]
    assert proxy_status(h, "alice", "alice-pw", "/p/x?b") == 407
    assert proxy_status(h, "carol", "carol-pw", "/p/x?b") == 200
    assert proxy_status(h, "carol", "carol-pw", "/p/x") == 407


def test_proxy_sections_of_a_forward_proxy_are_scopes_of_their_own(make_httpd, backend, two_dbm_files, mpm):
    a, b = two_dbm_files

    def section(path: str, users: Path) -> str:
        return (f'<Proxy "{backend.url}{path}/*">\n    AuthType ProxyBasic\n    AuthName "{REALM}"\n'
                f"    AuthProxyProvider dbm\n    AuthDBMUserFile {users}\n    Require valid-user\n</Proxy>\n")
    h = make_httpd("ProxyRequests On\n" + section("/a", a) + section("/b", b), extra_modules=["authn_dbm"],
                   mpm=mpm)

    def status(user: str, password: str, path: str) -> int:
        return curl("-x", h.url, "--proxy-user", f"{user}:{password}", f"{backend.url}{path}").status
    assert [status("alice", "alice-pw", "/a/x") for _ in range(2)] == [200, 200]
    assert status("alice", "alice-pw", "/b/x") == 407
    assert status("carol", "carol-pw", "/b/x") == 200


def test_where_htaccess_files_set_the_store_every_answer_comes_from_the_store(make_httpd, two_dbm_files, mpm):
    a, b = two_dbm_files
    h = make_httpd("", start=False, extra_modules=["authn_dbm"], mpm=mpm)
    h.body = (f"<Directory {h.root}/htdocs>\n    AllowOverride AuthConfig\n    AuthType ProxyBasic\n"
              f'    AuthName "{REALM}"\n    AuthProxyProvider dbm\n    Require valid-user\n</Directory>\n')
    for name, users in (("a", a), ("b", b)):
        (h.root / "htdocs" / name).mkdir()
        (h.root / "htdocs" / name / ".htaccess").write_text(f"AuthDBMUserFile {users}\n")
        (h.root / "htdocs" / name / "index.html").write_text("local\n")
    h.start()

    def status(user: str, password: str, path: str) -> int:
        return curl("-u", f"{user}:{password}", f"{h.url}{path}").status
    assert [status("alice", "alice-pw", "/a/") for _ in range(2)] == [200, 200]
    assert status("alice", "alice-pw", "/b/") == 401
    assert status("alice", "b-password", "/b/") == 200
    assert status("alice", "b-password", "/a/") == 401


# ---------------------------------------------------------------- LDAP scopes

@pytest.fixture
def slapd(server_root):
    s = Slapd(Path(server_root) / "slapd").start()
    s.add_tree({"leo": "leo-pw"})
    s.add(f"dn: uid=ada,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: ada\ncn: ada\nsn: ada\n"
          f"employeeType: admin\nuserPassword: ada-pw\n\n"
          f"dn: uid=carol,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: carol\ncn: carol\nsn: carol\n"
          f"mail: carol@example.com\nuserPassword: carol-pw\n")
    yield s
    s.stop()


@needs_ldap
def test_an_ldap_filter_keeps_out_a_user_who_logged_in_where_no_filter_applies(make_httpd, backend, slapd, mpm):
    people = f"{slapd.url}/{PEOPLE}"
    h = make_httpd(LDAP_NO_CACHE +
                   location(backend, "/all", "AuthProxyProvider ldap", f"AuthLDAPURL {people}?uid") +
                   location(backend, "/admins", "AuthProxyProvider ldap",
                            f'AuthLDAPURL "{people}?uid?sub?(employeeType=admin)"'),
                   extra_modules=LDAP_MODULES, mpm=mpm)
    assert proxy_status(h, "ada", "ada-pw", "/admins/x") == 200
    assert [proxy_status(h, "leo", "leo-pw", "/all/x") for _ in range(2)] == [200, 200]
    assert proxy_status(h, "leo", "leo-pw", "/admins/x") == 407


@needs_ldap
def test_remote_user_is_the_directorys_name_on_every_request(make_httpd, backend, slapd, mpm):
    h = make_httpd(LDAP_NO_CACHE + location(
        backend, "/p", "AuthProxyProvider ldap", f"AuthLDAPURL {slapd.url}/{PEOPLE}?uid,mail",
        "AuthLDAPRemoteUserAttribute mail", 'RequestHeader set X-Remote-User "expr=%{REMOTE_USER}"'),
        extra_modules=LDAP_MODULES, mpm=mpm)
    seen = []
    for _ in range(3):
        r = get(h, "/p/x", basic("carol", "carol-pw"))
        assert r.status == 200
        seen += r.backend_headers()["x-remote-user"]
    assert seen == ["carol@example.com"] * 3


@needs_ldap
def test_a_password_set_in_the_directory_works_within_seconds_from_the_address_that_just_tried_it(
        make_httpd, backend, slapd, mpm):
    h = make_httpd(LDAP_NO_CACHE + location(backend, "/p", "AuthProxyProvider ldap",
                                            f"AuthLDAPURL {slapd.url}/{PEOPLE}?uid"),
                   extra_modules=LDAP_MODULES, mpm=mpm)
    assert proxy_status(h, "leo", "new-pw") == 407          # not yet his password
    slapd.set_password("leo", "new-pw")
    changed = time.monotonic()
    deadline = changed + 10                                  # the brief recall is 3 s
    status = proxy_status(h, "leo", "new-pw")
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = proxy_status(h, "leo", "new-pw")
    assert status == 200, "the new password was still refused 10 s after it was set"
    print(f"\nthe new password was admitted {time.monotonic() - changed:.1f} s after ldapmodify")


# ---------------------------------------------------------------- bytes a hash reads

def test_passwords_sharing_the_72_bytes_bcrypt_reads_cost_one_verification(make_httpd, backend, make_users, mpm):
    head = "b" * 72
    users = make_users({"alice": head + "set-with-this-tail"})
    h = make_httpd(location(backend, "/p", f"AuthUserFile {users}"), mpm=mpm)
    h.mark_log()
    # bcrypt reads 72 bytes: stock httpd admits all 40, and so does the module,
    # at the cost of one verification, not 40.
    assert [proxy_status(h, "alice", f"{head}-{i}") for i in range(40)] == [200] * 40
    log = h.log_since()
    assert log.count("user alice: password verified against its bcrypt hash") == 1
    # 40 wrong ones sharing their 72 bytes are one wrong password: one
    # verification, one failure counted, no lockout (the limit is 20).
    wrong = "w" * 72
    h.mark_log()
    assert [proxy_status(h, "alice", f"{wrong}-{i}") for i in range(40)] == [407] * 40
    log = h.log_since()
    assert log.count("user alice: password checked against its bcrypt hash: no match") == 1
    assert log.count("the same as before (APX01013)") == 39
