"""pytest fixtures shared by the integration tests."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from harness import Backend, Httpd


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
