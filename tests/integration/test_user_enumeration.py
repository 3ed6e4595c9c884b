"""Unknown users, unusable entries and over-costly hashes cost what a wrong password costs.

A wrong password for a real bcrypt user costs one bcrypt verification; an
unknown user used to be answered at once, which told a guesser which names
exist. Now every unknown user and every unusable entry costs one dummy
verification of the format and cost most of the file's users have (counted
here through the module's debug lines, APX01014 for a dummy and APX01015 for
a real mismatch). An entry whose cost is over the cap (more rounds than any
htpasswd default would write, e.g. glibc's maximum of 999,999,999) is never
run: it is warned about at load, with file and line, and costs a dummy too.
"""

from __future__ import annotations

import re

import pytest

from harness import proxied_location, proxy_status

COST = "12"   # the cost the finding was measured with (~0.25 s a verification)


def scope(users: str, backend) -> str:
    # Many wrong passwords from one address: the throttle would step in.
    return "AuthProxyThrottle Off\n" + proxied_location("/p", backend.url, users, "Proxy")


@pytest.fixture
def users(make_users):
    path = make_users({"alice": "alice-pw", "bob": "bob-pw"}, ("-B", "-C", COST))
    with open(path, "a") as f:
        f.write("plain:plain-password\n")
        f.write("slow:$6$rounds=999999999$abcdefghijklmnop$" + "x" * 86 + "\n")
    return path


def test_an_unknown_user_costs_one_verification_of_the_files_own_kind(make_httpd, backend, users):
    h = make_httpd(scope(users, backend))
    h.mark_log()
    assert proxy_status(h, "alice", "wrong") == 407
    real = re.findall(r"APX01015: user alice: password checked against its (\S+) hash: no match", h.log_since())
    assert real == ["bcrypt"]
    for name in ("carol", "dave", "erin"):
        assert proxy_status(h, name, "whatever") == 407
    dummies = re.findall(r"APX01014: user (\w+): dummy verification against a (\S+) hash of cost (\d+) "
                         r"\(unknown user\)", h.log_since())
    assert dummies == [("carol", "bcrypt", COST), ("dave", "bcrypt", COST), ("erin", "bcrypt", COST)]


def test_an_unusable_entry_costs_a_dummy_verification_and_is_warned_about_at_load(make_httpd, backend, users):
    h = make_httpd(scope(users, backend))
    warning = h.wait_for_log(r"APX02002: .* line 3: password of user 'plain': not a recognised hash")
    assert warning
    h.mark_log()
    assert proxy_status(h, "plain", "plain-password") == 407
    assert re.search(r"APX01014: user plain: dummy verification against a bcrypt hash of cost 12 "
                     r"\(unusable entry\)", h.log_since())


def test_an_entry_over_the_cost_cap_is_never_run(make_httpd, backend, users):
    h = make_httpd(scope(users, backend))
    assert h.wait_for_log(rf"\[auth_proxy:warn\].*APX02002: {re.escape(users)} line 4: password of user 'slow': "
                          r"SHA-512-crypt of 999999999 rounds, over the limit of 20000000; the user can never log in")
    h.mark_log()
    # 999,999,999 rounds take minutes: an answer within the client's 30 s timeout means they were not run.
    assert proxy_status(h, "slow", "anything") == 407
    log = h.log_since()
    assert re.search(r"user slow: authentication failure for \"/p/x\": the password hash in .* is unusable: "
                     r"SHA-512-crypt of 999999999 rounds, over the limit of 20000000 \(APX01006\)", log), log
    assert "APX01014: user slow: dummy verification against a bcrypt hash of cost 12" in log
    assert proxy_status(h, "bob", "bob-pw") == 200   # the rest of the file is unaffected
