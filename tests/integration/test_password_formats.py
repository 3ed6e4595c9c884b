"""Every password format the real htpasswd writes is verified; plaintext never is.

Each user file is written by /usr/bin/htpasswd itself (or derived from its
output where htpasswd has no flag, as for the $2a$/$2b$ bcrypt prefixes).
"""

import re

import pytest

from harness import FAST_BCRYPT, basic, curl, htpasswd, proxied_location

PASSWORD = "s3cret!"  # 7 characters: within crypt DES's 8-character limit


def with_bcrypt_prefix(prefix):
    """A bcrypt hash from htpasswd -B, re-labelled $2a$ or $2b$ (same algorithm, other writers)."""
    def write(make_users):
        path = make_users({"alice": PASSWORD})
        text = open(path).read()
        assert text.startswith("alice:$2y$04$")
        open(path, "w").write(text.replace("$2y$", prefix, 1))
        return path
    return write


def with_flags(*flags):
    def write(make_users):
        return make_users({"alice": PASSWORD}, flags)
    return write


FORMATS = {
    # name: (writer, the entry's shape)
    "bcrypt_2y": (with_flags(*FAST_BCRYPT), r"^\$2y\$04\$[./A-Za-z0-9]{53}$"),
    "bcrypt_2a": (with_bcrypt_prefix("$2a$"), r"^\$2a\$04\$[./A-Za-z0-9]{53}$"),
    "bcrypt_2b": (with_bcrypt_prefix("$2b$"), r"^\$2b\$04\$[./A-Za-z0-9]{53}$"),
    "apr1_md5_default": (with_flags(), r"^\$apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$"),
    "apr1_md5": (with_flags("-m"), r"^\$apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$"),
    "sha1": (with_flags("-s"), r"^\{SHA\}[+/A-Za-z0-9]{27}=$"),
    "crypt_des": (with_flags("-d"), r"^[./A-Za-z0-9]{13}$"),
    "sha256_crypt": (with_flags("-2"), r"^\$5\$[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43}$"),
    "sha512_crypt": (with_flags("-5"), r"^\$6\$[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$"),
    "sha512_crypt_rounds": (with_flags("-5", "-r", "6000"),
                            r"^\$6\$rounds=6000\$[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$"),
}


@pytest.fixture(params=sorted(FORMATS))
def proxy(request, make_httpd, backend, make_users):
    writer, shape = FORMATS[request.param]
    users = writer(make_users)
    entry = open(users).read().strip().split(":", 1)[1]
    # Proves this system's htpasswd really wrote the format (crypt DES comes from libcrypt).
    assert re.match(shape, entry), f"htpasswd wrote an unexpected {request.param} entry: {entry}"
    return make_httpd(proxied_location("/app", backend.url, users))


def test_right_password_is_accepted(proxy):
    r = curl("-H", f"Proxy-Authorization: {basic('alice', PASSWORD)}", f"{proxy.url}/app")
    assert r.status == 200
    assert r.header("X-Backend") == "echo"


def test_wrong_password_is_refused_with_407(proxy):
    proxy.mark_log()
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 's3cret?')}", f"{proxy.url}/app")
    assert r.status == 407
    assert re.search(r"user alice: authentication failure .*Password Mismatch \(APX01007\)", proxy.log_since())


@pytest.mark.parametrize("writer", ["htpasswd -p", "by hand"])
def test_plaintext_entry_is_never_accepted_and_is_reported(make_httpd, backend, users, writer):
    if writer == "htpasswd -p":
        htpasswd(users, "carol", "plain-password", "-p")
    else:
        with open(users, "a") as f:
            f.write("carol:plain-password\n")
    assert open(users).read().splitlines()[1] == "carol:plain-password"
    h = make_httpd(proxied_location("/app", backend.url, users))

    # Loading the file warns about the entry, naming file and line.
    assert h.wait_for_log(rf"\[auth_proxy:warn\].*APX02002: {re.escape(users)} line 2: .*carol.*not a recognised hash")

    h.mark_log()
    r = curl("-H", f"Proxy-Authorization: {basic('carol', 'plain-password')}", f"{h.url}/app")
    assert r.status == 407
    assert r.header("X-Backend") is None
    assert re.search(rf"user carol: authentication failure for \"/app\": the password hash in {re.escape(users)} "
                     r"is unusable: not a recognised hash .*\(APX01006\)", h.log_since())

    # The rest of the file is unaffected.
    assert curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", f"{h.url}/app").status == 200
