"""What a client sees in a challenge: a valid quoted-string realm, and the operator's ErrorDocument 407."""

import re

import pytest

from harness import assert_challenged, curl

# Config text inside AuthName "...": httpd's config parser turns \" into " and
# \\ into \, then AuthName's expression parser turns \\ into \ once more, so
# the realm itself is:   Corp "West" C:\proxy
AUTHNAME_IN_CONFIG = r'"Corp \"West\" C:\\\\proxy"'
REALM = 'Corp "West" C:\\proxy'
EXPECTED = r'Basic realm="Corp \"West\" C:\\proxy", charset="UTF-8"'


def unquote(quoted: str) -> str:
    """RFC 7230 quoted-string -> text; fails on anything that is not one."""
    m = re.fullmatch(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)"', quoted)
    assert m, f"not a valid quoted-string: {quoted!r}"
    return re.sub(r"\\(.)", r"\1", m.group(1))


def realm_of(challenge: str) -> str:
    m = re.fullmatch(r'Basic realm=("(?:[^"\\]|\\.)*"), charset="UTF-8"', challenge)
    assert m, f"not a Basic challenge with realm and charset: {challenge!r}"
    return unquote(m.group(1))


def test_realm_with_quotes_and_backslash_is_sent_as_a_valid_quoted_string(make_httpd, backend, users):
    h = make_httpd(f"""
<Location /app>
    ProxyPass {backend.url}/app
    AuthType ProxyBasic
    AuthName {AUTHNAME_IN_CONFIG}
    AuthUserFile {users}
    Require valid-user
</Location>
""")
    r = curl(f"{h.url}/app")
    assert r.status == 407
    assert r.header("Proxy-Authenticate") == EXPECTED
    assert realm_of(r.header("Proxy-Authenticate")) == REALM


def test_realm_of_a_local_401_is_quoted_the_same_way(make_httpd, users):
    h = make_httpd(f"""
<Location /local>
    AuthType ProxyBasic
    AuthName {AUTHNAME_IN_CONFIG}
    AuthUserFile {users}
    Require valid-user
</Location>
""")
    r = curl(f"{h.url}/local/")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == EXPECTED


def test_plain_realm_is_sent_unchanged_with_utf8_charset(make_httpd, backend, users):
    h = make_httpd(f"""
<Location /app>
    ProxyPass {backend.url}/app
    AuthType proxybasic
    AuthName "Login Authentication"
    AuthUserFile {users}
    Require valid-user
</Location>
""")
    r = curl(f"{h.url}/app")
    # AuthType is matched case-insensitively, like every httpd auth type.
    assert_challenged(r, "Login Authentication")


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_error_document_407_text_is_served_with_the_challenge(make_httpd, backend, users, mode):
    scope = (f"<Location /app>\n    ProxyPass {backend.url}/app\n" if mode == "reverse"
             else 'ProxyRequests On\n<Proxy "*">\n')
    end = "</Location>" if mode == "reverse" else "</Proxy>"
    h = make_httpd(f"""
ErrorDocument 407 "Ask the help desk for proxy access"
{scope}    AuthType ProxyBasic
    AuthName "Login Authentication"
    AuthUserFile {users}
    Require valid-user
{end}
""")
    if mode == "reverse":
        r = curl(f"{h.url}/app")
    else:
        r = curl("-x", h.url, f"{backend.url}/app")
    assert_challenged(r, "Login Authentication")
    assert r.body == b"Ask the help desk for proxy access"


def test_error_document_407_in_the_scope_is_honoured(make_httpd, backend, users):
    h = make_httpd(f"""
<Location /app>
    ProxyPass {backend.url}/app
    ErrorDocument 407 "Proxy login for the app"
    AuthType ProxyBasic
    AuthName "Login Authentication"
    AuthUserFile {users}
    Require valid-user
</Location>
""")
    r = curl("-H", "Proxy-Authorization: Basic YWxpY2U6d3Jvbmc=", f"{h.url}/app")  # alice:wrong
    assert_challenged(r, "Login Authentication")
    assert r.body == b"Proxy login for the app"
