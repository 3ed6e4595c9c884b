"""Proxy-Authorization parsing end to end (RFC 7617 / RFC 7235), one row per case.

Well-formed variants are accepted; every malformed value gets 407 with a
fresh challenge and an APX01003 error line naming the reason.
"""

import base64
import re

import pytest

from harness import assert_challenged, get, proxied_location, proxy_basic_auth, token

ALICE = token(b"alice:secret")  # "YWxpY2U6c2VjcmV0"
ALICE1 = token(b"alice:secret1")  # needs "==" padding: "YWxpY2U6c2VjcmV0MQ=="
assert ALICE1.endswith("MQ==")


@pytest.fixture
def proxy(make_httpd, backend, make_users):
    users = make_users({"alice": "secret", "alice1": "secret1", "bob": "pa:ss:word"})
    return make_httpd(proxied_location("/app", backend.url, users) +
                      f"<Location /local>\n{proxy_basic_auth(users)}</Location>\n")


ACCEPTED = [
    ("scheme_in_lowercase", f"basic {ALICE}"),
    ("scheme_in_uppercase", f"BASIC {ALICE}"),
    ("several_spaces_before_the_token", f"Basic     {ALICE}"),
    ("padded_token", f"Basic {token(b'alice1:secret1')}"),
    ("password_containing_colons", f"Basic {token(b'bob:pa:ss:word')}"),
]


@pytest.mark.parametrize("value", [v for _, v in ACCEPTED], ids=[i for i, _ in ACCEPTED])
def test_well_formed_credentials_are_accepted(proxy, value):
    r = get(proxy, "/app", value)
    assert r.status == 200
    assert r.header("X-Backend") == "echo"


def test_user_id_ends_at_the_first_colon(proxy):
    # "bob:pa" + ":ss:word" is not user "bob:pa": the password keeps its colons.
    assert get(proxy, "/app", f"Basic {token(b'bob:pa')}").status == 407
    assert get(proxy, "/app", f"Basic {token(b'bob:pa:ss:word:')}").status == 407


MALFORMED = [
    ("other_scheme", "Bearer abc.def.ghi", "authentication scheme is not Basic"),
    ("scheme_without_token", "Basic", "no credentials after the Basic scheme"),
    ("bad_base64_characters", "Basic YWxp!2U6c2VjcmV0", "credentials are not valid base64"),
    ("space_inside_the_token", "Basic YWxp Y2U6c2VjcmV0", "credentials are not valid base64"),
    ("missing_padding", "Basic " + ALICE1.rstrip("="), "credentials are not valid base64"),
    ("short_padding", "Basic " + ALICE1[:-1], "credentials are not valid base64"),
    ("too_much_padding", "Basic " + ALICE + "====", "credentials are not valid base64"),
    ("padding_in_the_middle", "Basic YWxp=2U6c2VjcmV0", "credentials are not valid base64"),
    ("non_zero_bits_under_padding", "Basic " + ALICE1[:-3] + "R==", "credentials are not valid base64"),
    ("url_safe_alphabet", "Basic " + base64.urlsafe_b64encode(b"alice:se\xfb\xffcret").decode(),
     "credentials are not valid base64"),
    ("no_colon", "Basic " + token(b"alicesecret"), "decoded credentials have no ':' separator"),
    ("empty_user_id", "Basic " + token(b":secret"), "decoded credentials have an empty user-id"),
    ("nul_in_password", "Basic " + token(b"alice:sec\x00ret"), "decoded credentials contain a control character"),
    ("nul_after_user", "Basic " + token(b"alice\x00:secret"), "decoded credentials contain a control character"),
    ("control_character", "Basic " + token(b"ali\x01ce:secret"), "decoded credentials contain a control character"),
    ("newline_in_password", "Basic " + token(b"alice:secret\nx"), "decoded credentials contain a control character"),
    ("delete_character", "Basic " + token(b"alice:secret\x7f"), "decoded credentials contain a control character"),
    ("oversized_token", "Basic " + token(b"alice:" + b"a" * 4494), "credentials are too long"),
]
# 6000 characters: beyond the module's limit, within httpd's LimitRequestFieldSize.
assert len(MALFORMED[-1][1]) == len("Basic ") + 6000


@pytest.mark.parametrize("value,reason", [(v, r) for _, v, r in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_malformed_credentials_get_407_and_are_logged_with_the_reason(proxy, value, reason):
    proxy.mark_log()
    assert_challenged(get(proxy, "/app", value))
    line = proxy.wait_for_log(r"APX01003:")
    assert re.search(r"\[auth_proxy:error\] .*\[client 127\.0\.0\.1:\d+\] APX01003: "
                     rf'malformed Proxy-Authorization header for "/app": {re.escape(reason)}$', line), line


def test_header_beyond_httpd_field_limit_is_refused_by_httpd_itself(proxy):
    # LimitRequestFieldSize (8190) stops it before any module runs: 400, not 200.
    r = get(proxy, "/app", "Basic " + token(b"alice:" + b"a" * 7000))
    assert r.status == 400
    assert r.header("X-Backend") is None
    assert "APX01003" not in proxy.log()


def test_malformed_authorization_on_a_local_path_gets_401_and_is_logged(proxy):
    proxy.mark_log()
    assert_challenged(get(proxy, "/local/", "Basic " + token(b"alicesecret"), header="Authorization"), local=True)
    assert re.search(r'APX01003: malformed Authorization header for "/local/": '
                     r"decoded credentials have no ':' separator", proxy.log_since())
