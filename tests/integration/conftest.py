"""pytest fixtures shared by the integration tests."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from harness import FAST_BCRYPT, Backend, Httpd, htpasswd
from kerberos import Kdc


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.stop()


@pytest.fixture
def server_root():
    """A scratch directory the unprivileged httpd children can read (pytest's tmp_path is 0700)."""
    path = tempfile.mkdtemp(prefix="auth_proxy_test_")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def kdc(server_root, monkeypatch):
    """A started MIT KDC for realm PROXY.TEST (kerberos.Kdc) under server_root,
    stopped by its pid after the test. Its krb5.conf and a replay cache of
    its own are in this process's environment, so every httpd the test
    starts (make_httpd copies the environment) accepts tickets of the realm."""
    k = Kdc(os.path.join(server_root, "kdc")).start()
    for name, value in k.server_env(os.path.join(server_root, "rcache")).items():
        monkeypatch.setenv(name, value)
    yield k
    k.stop()


@pytest.fixture
def make_users(server_root):
    """Factory: make_users({user: password, ...}, flags=FAST_BCRYPT, name="users")
    adds the users to the file @p name in server_root with the real htpasswd
    (creating it if needed; flags=() is htpasswd's own default format) and
    returns its path."""
    def factory(users: dict[str, str], flags: tuple[str, ...] = FAST_BCRYPT, name: str = "users") -> str:
        path = os.path.join(server_root, name)
        for user, password in users.items():
            htpasswd(path, user, password, *flags)
        return path
    return factory


@pytest.fixture
def users(make_users):
    """The user file most tests need: alice, password "secret", bcrypt."""
    return make_users({"alice": "secret"})


@pytest.fixture(params=[True, False], ids=["with_authn_file", "without_authn_file"])
def authn_file(request):
    """Both set-ups a ProxyBasic scope must work in: next to mod_authn_file
    (Debian's default, so both modules read AuthUserFile) and without it."""
    return request.param


@pytest.fixture
def make_httpd(server_root):
    """Factory: make_httpd(body, **options) -> started Httpd; stopped and checked for crashes after the test."""
    started: list[Httpd] = []

    def factory(body: str = "", start: bool = True, **options) -> Httpd:
        h = Httpd(os.path.join(server_root, f"httpd{len(started)}"), body=body, **options)
        started.append(h)
        return h.start() if start else h

    yield factory
    for h in started:
        h.stop()
    for h in started:
        crashes = h.crashes()
        assert not crashes, f"crash lines in {h.error_log}:\n" + "\n".join(crashes)
