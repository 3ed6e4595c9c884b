"""AuthProxyProvider kerberos against a real MIT KDC (kerberos.Kdc): a Basic
password is checked with an AS exchange, and the ticket it buys is verified
with the proxy's keytab, so that a KDC without the realm's keys (a spoofed
one) cannot vouch for a password. The credential cache stands in front of
it: one AS exchange per user and password per AuthProxyCacheTimeout,
counted in the KDC's own log.
"""

from __future__ import annotations

import os
import re

import pytest

from harness import basic
from kerberos import USERS, Kdc
# keytab (root's alone, 0600) and principals (alice, bob and the proxy's services) are fixtures.
from test_negotiate import (REALM, SERVICES, forward_proxy, get, keytab, principals,  # noqa: F401
                            reverse_proxy, token_for, wait_for_log)


def password_scope(keytab, providers: str = "kerberos", extra: str = "") -> str:
    return (f'    AuthType ProxyBasic\n    AuthName "{REALM}"\n    AuthProxyProvider {providers}\n'
            f"    AuthProxyKeytab {keytab}\n{extra}    Require valid-user\n")


@pytest.fixture
def proxy(make_httpd, backend, keytab):
    return forward_proxy(make_httpd, backend, password_scope(keytab))


def throttled_proxy(make_httpd, backend, keytab, failures: int):
    """A forward proxy that locks an address out after @p failures distinct failed logins."""
    return forward_proxy(make_httpd, backend, password_scope(keytab),
                         settings={"AuthProxyThrottleFailures": failures})


def through(h, backend, path: str, user: str, password: str):
    return get(h.port, f"{backend.url}{path}", basic(user, password))


# ------------------------------------------------------------ the answers of the KDC

def test_the_right_password_is_admitted_as_the_name_typed(proxy, backend):
    assert through(proxy, backend, "/short", "alice", USERS["alice"]).status == 200
    assert through(proxy, backend, "/full", "alice@PROXY.TEST", USERS["alice"]).status == 200
    assert [d["path"] for d in backend.received] == ["/short", "/full"]
    assert "proxy-authorization" not in {k.lower() for k, _v in backend.received[-1]["headers"]}
    assert proxy.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {backend.url}/short HTTP/1\.1" 200$')
    assert proxy.wait_for_access_log(rf'^127\.0\.0\.1 alice@PROXY\.TEST "GET {backend.url}/full HTTP/1\.1" 200$')
    assert re.search(r"APX01017: user alice: authn provider kerberos granted the password", proxy.log())


def test_a_wrong_password_is_refused_and_counted_by_the_throttle(make_httpd, backend, keytab):
    h = throttled_proxy(make_httpd, backend, keytab, failures=2)
    r = through(h, backend, "/one", "alice", "wrong-1")
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == [f'Basic realm="{REALM}", charset="UTF-8"']
    assert through(h, backend, "/two", "alice", "wrong-2").status == 407
    # Two distinct failures: the address is locked out, the right password included.
    assert through(h, backend, "/three", "alice", USERS["alice"]).status == 429
    assert backend.received == []
    log = h.log()
    assert "APX01018: user alice: authn provider kerberos refused the password" in log
    assert len(re.findall(r"user alice: authentication failure for .*Password Mismatch \(APX01007\)", log)) == 2
    assert "APX01011" in log


def test_an_unknown_principal_is_refused_and_counted_like_a_wrong_password(make_httpd, backend, keytab, kdc):
    h = throttled_proxy(make_httpd, backend, keytab, failures=2)
    assert through(h, backend, "/nobody", "nobody", "guess").status == 407
    assert wait_for_log(h, r'user nobody not found in kerberos: .* \(APX01005\)')
    # The KDC was asked, and said it knows no such principal.
    assert re.search(r"AS_REQ .*CLIENT_NOT_FOUND: nobody@PROXY\.TEST for krbtgt/", kdc.log_text())
    assert through(h, backend, "/wrong", "alice", "wrong").status == 407
    assert through(h, backend, "/after", "alice", USERS["alice"]).status == 429
    assert backend.received == []


def test_an_expired_password_is_refused_with_its_own_line(proxy, backend, kdc):
    kdc.kadmin('modprinc -pwexpire "yesterday" alice')
    assert through(proxy, backend, "/x", "alice", USERS["alice"]).status == 407
    assert wait_for_log(proxy, r"APX01070: user alice: the KDC refuses the login: the password has expired")
    assert backend.received == []


def test_a_disabled_principal_is_refused_with_its_own_line(proxy, backend, kdc):
    kdc.kadmin("modprinc -allow_tix bob")
    assert through(proxy, backend, "/x", "bob", USERS["bob"]).status == 407
    assert wait_for_log(proxy, r"APX01071: user bob: the KDC refuses the login: the principal is disabled")
    assert backend.received == []


# ------------------------------------------------------------ the cache in front of the KDC

def test_one_as_exchange_per_user_and_password_per_cache_timeout(proxy, backend, kdc):
    n = 20
    before = kdc.as_requests("alice@PROXY.TEST")
    for i in range(n):
        assert through(proxy, backend, f"/r{i}", "alice", USERS["alice"]).status == 200
    assert kdc.as_requests("alice@PROXY.TEST") - before == 1
    # And one service ticket, the one the verification asked for.
    assert [t for t in kdc.tgs_requests() if t[0] == "alice@PROXY.TEST"] == [("alice@PROXY.TEST",
                                                                               "HTTP/localhost@PROXY.TEST")]
    assert len(backend.received) == n


def test_with_the_cache_off_every_request_is_an_as_exchange(make_httpd, backend, keytab, kdc):
    h = forward_proxy(make_httpd, backend, password_scope(keytab), settings={"AuthProxyCacheTimeout": 0})
    before = kdc.as_requests("alice@PROXY.TEST")
    for i in range(3):
        assert through(h, backend, f"/r{i}", "alice", USERS["alice"]).status == 200
    assert kdc.as_requests("alice@PROXY.TEST") - before == 3


def test_a_stopped_kdc_keeps_cached_users_and_fails_the_others_closed(proxy, backend, kdc):
    assert through(proxy, backend, "/before", "alice", USERS["alice"]).status == 200
    kdc.stop()
    assert through(proxy, backend, "/cached", "alice", USERS["alice"]).status == 200
    assert through(proxy, backend, "/uncached", "bob", USERS["bob"]).status == 500
    assert wait_for_log(proxy, r"APX01072: user bob: no answer from the KDC on the password: ")
    assert wait_for_log(proxy, r"APX01016: authn provider kerberos could not check user bob")
    assert [d["path"] for d in backend.received] == ["/before", "/cached"]
    kdc.start()
    assert through(proxy, backend, "/later", "bob", USERS["bob"]).status == 200


# ------------------------------------------------------------ a KDC that does not hold the realm's keys

@pytest.mark.parametrize("knows_the_service", [False, True], ids=["without_the_service", "with_its_own_service_key"])
def test_a_spoofed_kdc_cannot_vouch_for_a_password(make_httpd, backend, keytab, kdc, server_root, monkeypatch,
                                                   knows_the_service):
    # Same realm name, its own database: alice's password there is "evil".
    fake = Kdc(os.path.join(server_root, "fake-kdc")).start()
    try:
        fake.add_user("alice", "evil")
        if knows_the_service:
            for service in SERVICES:
                fake.add_service(service)
        monkeypatch.setenv("KRB5_CONFIG", str(fake.krb5_conf))   # the proxy asks the fake KDC
        h = forward_proxy(make_httpd, backend, password_scope(keytab))
        before = fake.as_requests("alice@PROXY.TEST")
        r = through(h, backend, "/spoofed", "alice", "evil")
        assert r.status in (407, 500)
        assert fake.as_requests("alice@PROXY.TEST") - before == 1   # the fake KDC did say yes
        assert wait_for_log(h, r"APX01073: user alice: the KDC accepted the password, but its ticket could not "
                               r"be verified with the keys of AuthProxyKeytab ")
        # Nor is the refusal remembered as a grant.
        assert through(h, backend, "/again", "alice", "evil").status in (407, 500)
        assert backend.received == []
        assert "user alice: authn provider kerberos granted" not in h.log()
    finally:
        fake.stop()


# ------------------------------------------------------------ with other stores and schemes

def test_a_user_in_the_file_answers_from_the_file_and_others_from_the_kdc(make_httpd, backend, keytab, kdc,
                                                                          make_users):
    users = make_users({"alice": "file-secret", "svc": "svc-secret"})
    h = forward_proxy(make_httpd, backend, password_scope(keytab, "file kerberos", f"    AuthUserFile {users}\n"))
    before = kdc.as_requests("alice@PROXY.TEST")
    assert through(h, backend, "/file", "alice", "file-secret").status == 200
    assert through(h, backend, "/svc", "svc", "svc-secret").status == 200
    # The file knows alice: its "wrong password" decides, the KDC is not asked.
    assert through(h, backend, "/kdc-password", "alice", USERS["alice"]).status == 407
    assert kdc.as_requests("alice@PROXY.TEST") == before
    assert through(h, backend, "/bob", "bob", USERS["bob"]).status == 200
    assert kdc.as_requests("bob@PROXY.TEST") == 1
    assert [d["path"] for d in backend.received] == ["/file", "/svc", "/bob"]


def test_negotiate_scope_offers_basic_against_the_kdc_to_clients_without_a_ticket(make_httpd, backend, keytab,
                                                                                  kdc, server_root):
    h = reverse_proxy(make_httpd, backend, f"""    AuthType ProxyNegotiate
    AuthName "{REALM}"
    AuthProxyProvider kerberos
    AuthProxyKeytab {keytab}
    Require valid-user
""")
    r = get(h.port, "/app/x")
    assert r.status == 407
    assert r.headers["proxy-authenticate"] == ["Negotiate", f'Basic realm="{REALM}", charset="UTF-8"']
    assert get(h.port, "/app/basic", basic("bob", USERS["bob"])).status == 200
    assert get(h.port, "/app/wrong", basic("bob", "nope")).status == 407
    alice = kdc.kinit("alice", USERS["alice"], os.path.join(server_root, "alice.ccache"))
    assert get(h.port, "/app/negotiate", token_for(kdc, alice)).status == 200
    assert [d["path"] for d in backend.received] == ["/basic", "/negotiate"]
    assert h.wait_for_access_log(r'^127\.0\.0\.1 bob "GET /app/basic HTTP/1\.1" 200$')


# ------------------------------------------------------------ configuration

def test_kerberos_without_a_keytab_fails_configtest(make_httpd, backend):
    h = make_httpd(f"""
ProxyRequests On
<Proxy "*">
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthProxyProvider file Kerberos
    AuthUserFile /dev/null
    Require valid-user
</Proxy>
""", start=False)
    proc = h.configtest()
    assert proc.returncode != 0
    assert "APX03040" in proc.stderr
    assert "AuthProxyProvider kerberos but has no AuthProxyKeytab" in proc.stderr
