"""Clients nobody here wrote get through the proxy the way their users run them.

curl (reverse proxy, forward proxy, CONNECT, --proxy-anyauth), Python's
urllib.request with ProxyBasicAuthHandler (answers the 407 by itself), ab
with -X/-P, and Debian's headless chromium driven by Playwright
(tests/integration/browser/load_page.js) loading a page through the forward
proxy: each gets in with the right credentials and is refused with 407 with
wrong ones.
"""

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import (assert_challenged, basic, client_env, curl, curl_verbose, proxied_location,
                     proxy_basic_auth)

REALM = "Corporate Proxy"
BROWSER_DIR = Path(__file__).parent / "browser"


@pytest.fixture
def forward(make_httpd, backend, users):
    """A forward proxy that serves the test backend only: nothing a client
    tries on its own (browser updates, ...) leaves the machine."""
    return make_httpd(f"""
ProxyRequests On
AllowCONNECT {backend.port}
<Proxy "*">
    Require all denied
</Proxy>
<Proxy "http://127.0.0.1:{backend.port}/*">
{proxy_basic_auth(users, REALM)}</Proxy>
<Proxy "127.0.0.1:{backend.port}">
{proxy_basic_auth(users, REALM)}</Proxy>
""", extra_modules=["proxy_connect"])


@pytest.fixture
def reverse(make_httpd, backend, users):
    return make_httpd(proxied_location("/app", backend.url, users, REALM))


def statuses(verbose: str) -> list:
    """Every response status curl received, in order (CONNECT responses included)."""
    return [int(m) for m in re.findall(r"^< HTTP/[\d.]+ (\d{3})", verbose, re.M)]


# ------------------------------------------------------------ curl

def test_curl_reverse_proxy_with_proxy_authorization_header(reverse, backend):
    assert curl(f"{reverse.url}/app").status == 407
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{reverse.url}/app")
    assert r.status == 200
    assert r.json()["path"] == "/app"


def test_curl_pointed_at_the_reverse_proxy_as_its_proxy_answers_the_challenge(reverse, backend):
    # curl -x <reverse proxy> --proxy-anyauth: the first request goes without
    # credentials, the 407's Proxy-Authenticate makes curl pick Basic.
    proc = curl_verbose("-x", reverse.url, "--proxy-anyauth", "--proxy-user", "alice:secret",
                    f"http://127.0.0.1:{reverse.port}/app")
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [407, 200]
    assert json.loads(proc.stdout)["path"] == "/app"


def test_curl_forward_proxy(forward, backend):
    assert_challenged(curl("-x", forward.url, f"{backend.url}/page"), REALM)
    r = curl("-x", forward.url, "--proxy-user", "alice:secret", f"{backend.url}/page")
    assert r.status == 200
    assert r.json()["path"] == "/page"


def test_curl_forward_proxy_anyauth_learns_basic_from_the_407(forward, backend):
    proc = curl_verbose("-x", forward.url, "--proxy-anyauth", "--proxy-user", "alice:secret", f"{backend.url}/page")
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [407, 200]
    assert "Proxy auth using Basic" in proc.stderr
    assert json.loads(proc.stdout)["path"] == "/page"
    assert [d["path"] for d in backend.received] == ["/page"]


def test_curl_connect_tunnel_with_anyauth(forward, backend):
    proc = curl_verbose("-p", "-x", forward.url, "--proxy-anyauth", "--proxy-user", "alice:secret",
                    f"{backend.url}/tunnelled")
    assert proc.returncode == 0, proc.stderr
    assert statuses(proc.stderr) == [407, 200, 200]   # CONNECT 407, CONNECT 200, GET 200
    assert json.loads(proc.stdout)["path"] == "/tunnelled"
    proc = curl_verbose("-p", "-x", forward.url, "--proxy-anyauth", "--proxy-user", "alice:wrong",
                    f"{backend.url}/tunnelled")
    assert proc.returncode != 0
    assert "CONNECT tunnel failed, response 407" in proc.stderr


# ------------------------------------------------------------ Python urllib

def urllib_opener(proxy_url, user, password):
    handler = urllib.request.ProxyBasicAuthHandler()
    handler.add_password(REALM, proxy_url, user, password)
    return urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy_url}), handler)


def test_python_urllib_proxy_basic_auth_handler_answers_the_challenge(forward, backend, monkeypatch):
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    opener = urllib_opener(forward.url, "alice", "secret")
    with opener.open(f"{backend.url}/from-urllib", timeout=20) as response:
        assert response.status == 200
        assert json.load(response)["path"] == "/from-urllib"
    # urllib sent no credentials first and answered the 407 itself.
    assert forward.wait_for_access_log(rf'^127\.0\.0\.1 - "GET {backend.url}/from-urllib HTTP/1\.1" 407$')
    assert forward.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {backend.url}/from-urllib HTTP/1\.1" 200$')


def test_python_urllib_with_wrong_password_gets_407(forward, backend, monkeypatch):
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    opener = urllib_opener(forward.url, "alice", "wrong")
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(f"{backend.url}/from-urllib", timeout=20)
    assert refused.value.code == 407
    assert backend.received == []


# ------------------------------------------------------------ ab

def ab(proxy, user_password, url):
    proc = subprocess.run(["ab", "-q", "-X", f"127.0.0.1:{proxy.port}", "-P", user_password,
                           "-n", "50", "-c", "4", url],
                          capture_output=True, text=True, timeout=120, env=client_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_ab_through_the_forward_proxy_completes_every_request(forward, backend):
    out = ab(forward, "alice:secret", f"{backend.url}/bench")
    assert re.search(r"^Complete requests:\s+50$", out, re.M)
    assert re.search(r"^Failed requests:\s+0$", out, re.M)
    assert "Non-2xx responses" not in out
    assert len(backend.received) == 50


def test_ab_with_wrong_password_gets_only_407(forward, backend):
    out = ab(forward, "alice:wrong", f"{backend.url}/bench")
    assert re.search(r"^Non-2xx responses:\s+50$", out, re.M)
    assert backend.received == []


# ------------------------------------------------------------ headless chromium

def load_in_chromium(proxy, username, password, url):
    if not shutil.which("node") or not Path("/usr/bin/chromium").exists():
        pytest.fail("chromium and node are installed by scripts/test; run it once")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        pytest.fail(f"playwright-core is missing: npm ci --prefix {BROWSER_DIR} (scripts/test does it)")
    proc = subprocess.run(["node", str(BROWSER_DIR / "load_page.js"),
                           json.dumps({"proxy": proxy.url, "username": username, "password": password,
                                       "url": url})],
                          capture_output=True, text=True, timeout=120, env=client_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_chromium_loads_a_page_through_the_forward_proxy(forward, backend):
    result = load_in_chromium(forward, "alice", "secret", f"{backend.url}/browser-page")
    assert result["error"] is None
    assert result["status"] == 200
    assert json.loads(result["text"])["path"] == "/browser-page"
    assert "/browser-page" in backend.paths()
    assert forward.wait_for_access_log(rf'^127\.0\.0\.1 alice "GET {backend.url}/browser-page HTTP/1\.1" 200$')


def test_chromium_with_wrong_credentials_is_refused_with_407(forward, backend):
    result = load_in_chromium(forward, "alice", "wrong", f"{backend.url}/browser-page")
    assert result["status"] == 407
    assert "Proxy Authentication Required" in result["text"]
    assert "/browser-page" not in backend.paths()
    assert forward.wait_for_access_log(rf'^127\.0\.0\.1 - "GET {backend.url}/browser-page HTTP/1\.1" 407$')
