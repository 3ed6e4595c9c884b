"""scripts/demo never removes a directory it did not make.

It makes its ServerRoot (DEMO_ROOT) afresh on every run. A DEMO_ROOT that
already exists and is not one the demo made (it writes a marker file into
those) is refused before anything slow runs: no apt-get, no build, no
httpd. The demo is run for real here; a refusal comes within seconds, so a
run that reaches the build (and would wipe the directory) fails on its
timeout, its process group killed.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from harness import REPO_ROOT, free_port

DEMO = REPO_ROOT / "scripts" / "demo"
REFUSAL = "was not made by the demo"


def run_demo(demo_root: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEMO_ROOT": demo_root,
           "PROXY_PORT": str(free_port()), "BACKEND_PORT": str(free_port())}
    proc = subprocess.Popen([str(DEMO)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"scripts/demo with DEMO_ROOT={demo_root} did not stop at its check: it went on to build and run")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_refused(result: subprocess.CompletedProcess, path) -> None:
    assert result.returncode != 0, result.stdout
    assert f"DEMO_ROOT {path} exists and {REFUSAL}" in result.stderr, result.stderr
    assert result.stdout == "", "the demo did something before refusing"


def test_an_existing_directory_it_did_not_make_is_left_alone(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me\n")
    assert_refused(run_demo(str(root), tmp_path), root)
    assert (root / "notes.txt").read_text() == "keep me\n"


def test_an_empty_directory_it_did_not_make_is_left_alone(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    assert_refused(run_demo(str(root), tmp_path), root)
    assert root.is_dir()


def test_a_file_is_left_alone(tmp_path):
    target = tmp_path / "file"
    target.write_text("data\n")
    assert_refused(run_demo(str(target), tmp_path), target)
    assert target.read_text() == "data\n"


def test_a_relative_demo_root_is_the_callers_and_is_left_alone(tmp_path):
    """A relative DEMO_ROOT means the caller's directory, not the repository's."""
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "data").write_text("x")
    assert_refused(run_demo("rel", tmp_path), tmp_path / "rel")
    assert (tmp_path / "rel" / "data").read_text() == "x"


def test_a_marker_written_by_someone_else_as_a_link_is_not_believed(tmp_path):
    root = tmp_path / "linked"
    root.mkdir()
    (root / "data").write_text("x")
    (root / ".mod_auth_proxy-demo").symlink_to(tmp_path / "elsewhere")
    assert_refused(run_demo(str(root), tmp_path), root)
    assert (root / "data").read_text() == "x"
