"""Internal redirects and subrequests keep httpd's AP_AUTH_INTERNAL_PER_CONF rules.

A subrequest or internal redirect that lands in the same configuration as the
request that made it inherits that request's user and is not authenticated
again; one that lands in a different configuration is authenticated on its
own. The site below mixes local files and proxied URLs in one ProxyBasic
scope: a local request reads Authorization, a proxied one reads
Proxy-Authorization. A client sends only the header its own request needs,
so a subrequest that were wrongly authenticated again would find no
credentials and fail (re-prompt); one that skipped authentication across
configurations would serve protected content to an anonymous client (bypass).
Both are checked for mod_dir (DirectoryIndex), ErrorDocument local URLs and
mod_include (<!--#include virtual -->).
"""

import pytest

from harness import assert_challenged, basic, free_port, get

REALM = "Site"
ALICE = basic("alice", "secret")
LOCAL_HEADER = "Authorization"   # what a local request reads (a proxied one: get()'s default, Proxy-Authorization)
INCLUDE_ERROR = b"[an error occurred while processing this directive]"


@pytest.fixture
def site(make_httpd, backend, users):
    h = make_httpd(start=False, extra_modules=["include"])
    h.body = f"""
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
ProxyPassMatch "^/site/api/(.*)$" "{backend.url}/api/$1"
ProxyPassMatch "^/site/down/(.*)$" "http://127.0.0.1:{free_port()}/$1"

<Location /site>
    AuthType ProxyBasic
    AuthName "{REALM}"
    AuthUserFile {users}
    Require valid-user
    Options +Includes
    DirectoryIndex index.html /site/api/home
    ErrorDocument 503 /site/errors/down.html
</Location>

<Location /pub>
    Options +Includes
    DirectoryIndex /site/api/home
    ErrorDocument 404 /site/errors/missing.html
</Location>

<Location /pub/mixed>
    DirectoryIndex /site/api/home index.html
</Location>
"""
    files = {
        "site/index.html": "site index\n",
        "site/errors/down.html": "the backend is down\n",
        "site/errors/missing.html": "protected not-found page\n",
        "site/page.shtml": 'before <!--#include virtual="/site/api/fragment" --> after\n',
        "site/app/.keep": "",                       # a directory without index.html
        "pub/page.shtml": 'before <!--#include virtual="/site/api/secret" --> after\n',
        "pub/dir/.keep": "",
        "pub/mixed/index.html": "public index\n",
    }
    for name, text in files.items():
        path = h.root / "htdocs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return h.start()


# ------------------------------------------------------------ mod_dir

def test_directory_index_needs_credentials_and_is_served_with_them(site):
    r = get(site, "/site/")
    assert_challenged(r, REALM, local=True)
    assert b"site index" not in r.body
    r = get(site, "/site/", ALICE, header=LOCAL_HEADER)
    assert r.status == 200
    assert r.body == b"site index\n"
    assert site.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /site/ HTTP/1\.1" 200$')


def test_proxied_directory_index_in_the_same_scope_does_not_ask_again(site, backend):
    # The local directory request authenticated with Authorization; its index
    # is a proxied subrequest in the same configuration and inherits alice.
    r = get(site, "/site/app/", ALICE, header=LOCAL_HEADER)
    assert r.status == 200
    assert r.json()["path"] == "/api/home"
    assert site.wait_for_access_log(r'^127\.0\.0\.1 alice "GET /site/app/ HTTP/1\.1" 200$')


def test_directory_index_in_a_protected_scope_is_authenticated_on_its_own(site, backend):
    # /pub/ is public; its index lives in the protected scope.
    # mod_dir answers with its subrequest's status but drops its headers;
    # the module puts the protected scope's challenge back (RFC 7235 §3.2).
    assert_challenged(get(site, "/pub/dir/"), REALM)
    assert backend.received == []
    r = get(site, "/pub/dir/", ALICE)
    assert r.status == 200
    assert r.json()["path"] == "/api/home"
    assert "proxy-authorization" not in r.backend_headers()


def test_a_refused_index_candidate_leaves_no_challenge_on_the_one_served(site, backend):
    # mod_dir tries the protected /site/api/home (407), then the public
    # index.html: the client gets that page, with no stray challenge.
    r = get(site, "/pub/mixed/")
    assert r.status == 200
    assert r.body == b"public index\n"
    assert r.header("Proxy-Authenticate") is None
    assert r.header("WWW-Authenticate") is None
    assert backend.received == []


# ------------------------------------------------------------ ErrorDocument

def test_local_error_document_in_the_same_scope_is_served_without_a_new_challenge(site):
    # The proxied request authenticated with Proxy-Authorization; its error
    # page is a local redirect in the same configuration and inherits alice.
    r = get(site, "/site/down/x", ALICE)
    assert r.status == 503
    assert r.body == b"the backend is down\n"
    assert r.header("WWW-Authenticate") is None
    assert r.header("Proxy-Authenticate") is None


def test_error_document_does_not_stand_in_for_authentication(site):
    r = get(site, "/site/down/x")
    assert_challenged(r, REALM)
    assert b"the backend is down" not in r.body
    r = get(site, "/site/errors/down.html")
    assert_challenged(r, REALM, local=True)
    assert b"the backend is down" not in r.body


def test_protected_error_document_is_not_served_for_a_public_url(site):
    r = get(site, "/pub/no-such-page")
    assert r.status == 404
    assert b"protected not-found page" not in r.body


# ------------------------------------------------------------ mod_include

def test_include_virtual_of_a_proxied_url_in_the_same_scope_does_not_ask_again(site, backend):
    r = get(site, "/site/page.shtml", ALICE, header=LOCAL_HEADER)
    assert r.status == 200
    assert r.body.startswith(b"before {")
    assert b'"path": "/api/fragment"' in r.body
    assert INCLUDE_ERROR not in r.body
    assert backend.paths() == ["/api/fragment"]


def test_include_virtual_from_a_public_page_is_authenticated_on_its_own(site, backend):
    r = get(site, "/pub/page.shtml")
    assert r.status == 200
    assert r.body == b"before " + INCLUDE_ERROR + b" after\n"
    assert backend.received == []
    # With the proxy credentials that scope asks for, the fragment is included.
    r = get(site, "/pub/page.shtml", ALICE)
    assert b'"path": "/api/secret"' in r.body
    assert backend.paths() == ["/api/secret"]
