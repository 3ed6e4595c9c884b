"""The Debian package on this machine, the way an admin uses it: built with
dpkg-buildpackage, installed with apt-get, enabled with a2enmod, serving the
example reverse-proxy configuration in the system apache2, purged without a
trace. Everything it changes in the system is put back whatever happens."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import CRASH_PATTERNS, basic, curl, free_port, htpasswd, proxy_challenge

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "libapache2-mod-auth-proxy"
APACHE = Path("/etc/apache2")
CONF_NAME = "auth-proxy-package-test"       # the example, as dropped into conf-available
MODULE_SO = Path("/usr/lib/apache2/modules/mod_auth_proxy.so")
MODS_AVAILABLE = [APACHE / "mods-available/auth_proxy.load", APACHE / "mods-available/auth_proxy.conf"]
SYSTEM_LOG = Path("/var/log/apache2/error.log")
# Where a2enmod/a2enconf keep who enabled what: made on first use.
STATE_DIRS = [Path(f"/var/lib/apache2/{kind}/{state}_by_{who}")
              for kind in ("module", "conf") for state in ("enabled", "disabled") for who in ("admin", "maint")]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package and runs the system apache2: needs root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("dpkg-buildpackage", "apt-get", "apache2ctl")),
                       reason="needs dpkg-dev, apt and apache2"),
    pytest.mark.skipif(bool(os.environ.get("AUTH_PROXY_PRELOAD")),
                       reason="sanitizer run: the package is built without sanitizers, the plain run covers it"),
]


def run(*cmd: str, cwd=None, timeout: float = 120, env: dict | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Runs @p cmd; with @p check, a failure shows its output."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    assert not check or proc.returncode == 0, \
        f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def apt_get(*args: str, cwd=None, check: bool = True) -> subprocess.CompletedProcess:
    # Other jobs on the machine may hold the dpkg lock for a while: wait for it.
    return run("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *args, cwd=cwd, timeout=900,
               env={"DEBIAN_FRONTEND": "noninteractive"}, check=check)


@functools.cache
def envvar(name: str) -> str:
    """A variable of /etc/apache2/envvars, as apache2ctl sees it."""
    return run("sh", "-c", f'. {APACHE}/envvars && printf %s "${name}"').stdout


def dpkg_knows(package: str) -> bool:
    """Installed, or removed with its conffiles left: anything short of purged."""
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return status.returncode == 0 and not status.stdout.endswith("not-installed")


def enabled(switch: str, name: str) -> bool:
    """a2query: is module (-m) or conf (-c) @p name enabled?"""
    return subprocess.run(["a2query", "-q", switch, name], capture_output=True).returncode == 0


def system_apache_pid() -> int | None:
    """The system apache2's parent, from its pid file, if it is alive."""
    try:
        pid = int(Path(envvar("APACHE_PID_FILE")).read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError, IndexError):
        return None
    # A parent that exited may linger as a zombie where nothing reaps orphans.
    return pid if "(apache2)" in stat and stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") else None


def stop_system_apache() -> None:
    """apache2ctl stop only signals the parent: wait until it is gone."""
    run("apache2ctl", "stop")
    wait_until(lambda: system_apache_pid() is None, "apache2 stopped")


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def port_80_taken() -> bool:
    """Would ports.conf's `Listen 80` fail (something else serves port 80)?"""
    families = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if socket.has_ipv6 else [])
    for family, address in families:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, 80))   # as apache2 does: bind may pass next to a listener,
                s.listen()              # listen does not
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
    return False


@contextlib.contextmanager
def ports_conf_without_port_80():
    """Where port 80 is taken, ports.conf's Listen lines are commented out while
    the test runs (the example's own Listen is then apache2's only one)."""
    ports_conf = APACHE / "ports.conf"
    if not port_80_taken():
        yield
        return
    saved = ports_conf.read_bytes()
    ports_conf.write_text(re.sub(r"(?m)^([ \t]*Listen\b)", r"#\1", saved.decode()))
    try:
        yield
    finally:
        ports_conf.write_bytes(saved)


def build_package(workdir: Path) -> Path:
    """dpkg-buildpackage on a copy of the working tree (uncommitted changes
    included), since it writes its results next to the source directory."""
    src = workdir / "src"
    listed = run("git", "ls-files", "-z", "-c", "-o", "--exclude-standard", cwd=REPO).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():   # a tracked file deleted in the working tree is listed too
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, timeout=1200,
        env={"DEB_BUILD_OPTIONS": "parallel=2"})
    debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, f"expected one {PACKAGE} .deb in {workdir}: {os.listdir(workdir)}"
    return debs[0]


def example_config(backend_url: str, user_file: Path, port: int) -> str:
    """conf/example-reverse-proxy.conf pointed at the test's backend and user
    file, on a free loopback port of its own."""
    text = (REPO / "conf/example-reverse-proxy.conf").read_text()
    text, proxied = re.subn(r"http://127\.0\.0\.1:8081", backend_url, text)
    text, files = re.subn(r"(?m)^(\s*AuthUserFile)\s+\S+$", rf"\g<1> {user_file}", text)
    assert proxied and files == 1, "the example no longer has the ProxyPass/AuthUserFile lines this test rewrites"
    return f"Listen 127.0.0.1:{port}\n\n{text}"


def runtime_dirs() -> list[Path]:
    """What apache2ctl (also run by a2query) makes on first use."""
    return [Path(envvar("APACHE_RUN_DIR")), Path(envvar("APACHE_LOCK_DIR"))]


def module_traces() -> list[str]:
    """Whatever of the module is on the system: files, enabled links, a2enmod's state."""
    found = [MODULE_SO, *MODS_AVAILABLE, *APACHE.glob("mods-enabled/auth_proxy.*"),
             *Path("/var/lib/apache2/module").glob("*/auth_proxy"),
             Path(envvar("APACHE_RUN_DIR")) / "auth_proxy"]
    return [str(p) for p in found if p.exists() or p.is_symlink()]


@pytest.fixture
def system():
    """A scratch directory for the build, once the system apache2 and the
    package are known to be this test's to use; afterwards apache2 is stopped,
    the conf removed, the package purged and the modules a2enmod enabled for
    it disabled again, whatever the test got to."""
    if system_apache_pid() is not None:
        pytest.skip("the system apache2 is running: this test starts and stops it, so it leaves it alone")
    if dpkg_knows(PACKAGE):
        pytest.skip(f"{PACKAGE} is on this machine already: this test installs and purges it")
    # Before a2query, which runs apache2ctl.
    new_state_dirs = [d for d in STATE_DIRS if not d.exists()]
    new_runtime_dirs = [d for d in runtime_dirs() if not d.exists()]
    were_enabled = {m for m in ("proxy", "proxy_http") if enabled("-m", m)}
    workdir = Path(tempfile.mkdtemp(prefix="auth_proxy_deb_"))
    os.chmod(workdir, 0o755)   # apt-get reads the .deb as _apt
    try:
        with ports_conf_without_port_80():
            try:
                yield workdir
            finally:
                if system_apache_pid() is not None:
                    with contextlib.suppress(AssertionError):
                        stop_system_apache()
                pid = system_apache_pid()
                if pid is not None:   # this test's (see the skip above): parent and children
                    os.killpg(pid, signal.SIGKILL)
    finally:
        run("a2disconf", "-q", "-p", CONF_NAME, check=False)
        (APACHE / "conf-available" / f"{CONF_NAME}.conf").unlink(missing_ok=True)
        if dpkg_knows(PACKAGE):
            apt_get("purge", PACKAGE, check=False)
        for module in ("proxy_http", "proxy"):   # dependants first
            if module not in were_enabled and enabled("-m", module):
                run("a2dismod", "-q", "-f", "-p", module, check=False)
        for d in new_state_dirs:
            with contextlib.suppress(OSError):
                d.rmdir()   # only if empty: a marker in it is someone else's
        for d in new_runtime_dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def test_package_installs_disabled_enables_serves_407_then_200_and_purges_without_trace(
        system, backend, server_root):
    deb = build_package(system)
    depends = run("dpkg-deb", "-f", str(deb), "Depends").stdout
    assert re.search(r"\bapache2-api-\d+", depends), f"no apache2-api dependency: {depends}"

    apt_get("install", f"./{deb.name}", cwd=system)
    assert [p for p in [MODULE_SO, *MODS_AVAILABLE] if not p.is_file()] == []
    assert not enabled("-m", "auth_proxy"), "the package enabled the module: the admin runs a2enmod"
    assert list(APACHE.glob("mods-enabled/auth_proxy.*")) == []

    run("a2enmod", "auth_proxy")
    assert enabled("-m", "auth_proxy")
    assert enabled("-m", "proxy"), "a2enmod auth_proxy did not enable proxy (# Depends: proxy)"
    run("a2enmod", "proxy_http")

    users = Path(server_root) / "proxy.htpasswd"
    htpasswd(users, "alice", "secret", "-B", "-C", "5")
    port = free_port()
    (APACHE / "conf-available" / f"{CONF_NAME}.conf").write_text(example_config(backend.url, users, port))
    run("a2enconf", CONF_NAME)
    test = run("apache2ctl", "configtest")
    assert "Syntax OK" in test.stderr
    assert "already loaded" not in test.stderr, test.stderr

    log_start = SYSTEM_LOG.stat().st_size if SYSTEM_LOG.exists() else 0
    run("apache2ctl", "start")
    wait_until(lambda: listening(port) and system_apache_pid() is not None, f"apache2 listens on {port}")
    assert "auth_proxy_module (shared)" in run("apache2ctl", "-M").stdout
    url = f"http://127.0.0.1:{port}/login"
    r = curl(url)
    assert r.status == 407
    assert r.header("Proxy-Authenticate") == proxy_challenge()
    r = curl("-H", f"Proxy-Authorization: {basic('alice', 'secret')}", url)
    assert r.status == 200
    assert r.json()["path"] == "/login"
    assert "proxy-authorization" not in r.backend_headers()
    assert (Path(envvar("APACHE_RUN_DIR")) / "auth_proxy").is_dir(), "no shared index directory"

    stop_system_apache()
    log = SYSTEM_LOG.read_text(errors="replace")[log_start:] if SYSTEM_LOG.exists() else ""
    crashes = [line for line in log.splitlines() if any(re.search(p, line) for p in CRASH_PATTERNS)]
    assert crashes == []

    apt_get("purge", PACKAGE)
    assert not dpkg_knows(PACKAGE)
    assert module_traces() == []
