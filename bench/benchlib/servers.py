"""The servers a run starts: httpd through the integration tests' launcher
(the static backend and the httpd under test), and Squid."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

from harness import BASE_MODULES, Httpd, free_port, terminate, wait_for_port

from .matrix import STATIC, STATIC_BODY, USER
from .measure import children_of

NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"

# What the report promises of every httpd: keep-alive connections that last
# the whole wrk run, no access log; and nothing a request pays for that the
# row does not name (mod_mime, core dumps).
SETTINGS = {
    "KeepAlive": "On", "MaxKeepAliveRequests": "0", "KeepAliveTimeout": "60", "Timeout": "60",
    "LogFormat": None, "CustomLog": None, "TypesConfig": None, "CoreDumpDirectory": None,
}

_serial = itertools.count(1)


class Server(Httpd):
    """An httpd of the benchmark: start() also waits for the children, so
    that pids() sees every process that will serve."""

    def start(self) -> "Server":
        super().start()
        children = 4 if self.mpm == "prefork" else 2
        deadline = time.time() + 10
        while len(children_of(self.proc.pid)) < children and time.time() < deadline:
            time.sleep(0.02)
        return self

    def pids(self) -> list[int]:
        if not self.proc:
            return []
        return [self.proc.pid] + children_of(self.proc.pid)


def mpm_settings(mpm: str, threads: int) -> dict:
    """prefork: 4 children; event and worker: 2 children of @p threads threads."""
    if mpm == "prefork":
        return {"StartServers": 4, "MinSpareServers": 2, "MaxSpareServers": 6, "ServerLimit": 8,
                "MaxRequestWorkers": 8}
    return {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": threads, "ThreadLimit": threads,
            "MaxRequestWorkers": 2 * threads, "MinSpareThreads": threads, "MaxSpareThreads": 2 * threads}


def httpd(work: Path, name: str, modules: list[str], body: str, *, mpm: str = "event", ports: int = 1,
          loglevel: str = "warn", auth_proxy: str | None = None, threads: int = 25) -> Server:
    """An httpd from a generated ServerRoot under @p work that loads exactly
    @p modules (and mod_auth_proxy from @p auth_proxy, if given)."""
    return Server(work / f"{name}-{next(_serial)}", body=body, mpm=mpm, authn_file=False,
                  extra_modules=modules, without_modules=[m for m in BASE_MODULES if m not in modules],
                  ports=ports, auth_proxy_module=auth_proxy,
                  settings={**SETTINGS, "LogLevel": loglevel, **mpm_settings(mpm, threads)})


def start_backend(work: Path) -> Server:
    """A second httpd serving one small static file on two ports (reverse, forward)."""
    b = httpd(work, "backend", ["authz_core"], '<Location "/">\n  Require all granted\n</Location>',
              ports=2, threads=32)
    (b.root / "htdocs" / STATIC).write_bytes(STATIC_BODY)
    return b


AUTH_BLOCKS = {
    "noauth": "Require all granted",
    "proxy": 'AuthType ProxyBasic\nAuthName "bench"\nAuthUserFile {file}\nRequire valid-user',
    "stock": 'AuthType Basic\nAuthName "bench"\nAuthBasicProvider file\nAuthUserFile {file}\nRequire valid-user',
    "socache": ('AuthType Basic\nAuthName "bench"\nAuthBasicProvider socache file\n'
                'AuthnCacheProvideFor file\nAuthUserFile {file}\nRequire valid-user'),
    # LDAP (section "ldap"); {file} is the AuthLDAPURL there.
    "proxy-ldap": 'AuthType ProxyBasic\nAuthName "bench"\nAuthProxyProvider ldap\nAuthLDAPURL "{file}"\nRequire valid-user',
    "stock-ldap": 'AuthType Basic\nAuthName "bench"\nAuthBasicProvider ldap\nAuthLDAPURL "{file}"\nRequire valid-user',
    # Authentication without a password check: what httpd's authn/authz
    # machinery (mod_auth_basic, Require valid-user) costs by itself.
    # Negotiate (section "negotiate"); {file} is the service keytab.
    "proxy-negotiate": 'AuthType ProxyNegotiate\nAuthName "bench"\nAuthProxyKeytab {file}\nRequire valid-user',
    "gssapi": ('AuthType GSSAPI\nAuthName "bench"\nGssapiCredStore keytab:{file}\nGssapiConnectionBound On\n'
               'Require valid-user'),
    # Basic checked against the KDC; {file} is the service keytab that vouches for the KDC's answer.
    "proxy-kerberos": ('AuthType ProxyBasic\nAuthName "bench"\nAuthProxyProvider kerberos\nAuthProxyKeytab {file}\n'
                       'Require valid-user'),
    "gssapi-basic": ('AuthType GSSAPI\nAuthName "bench"\nGssapiCredStore keytab:{file}\nGssapiBasicAuth On\n'
                     'Require valid-user'),
    "floor": (f'AuthType Basic\nAuthName "bench"\nAuthBasicProvider anon\nAnonymous {USER}\n'
              'Anonymous_MustGiveEmail Off\nAnonymous_VerifyEmail Off\nAnonymous_LogEmail Off\nRequire valid-user'),
}


def front(work: Path, kind: str, backend: Server, module: str, user_file: Path | str | None = None, *,
          mpm: str = "event", loglevel: str = "warn", global_extra: str = "",
          extra_modules: list[str] = (), threads: int = 25) -> Server:
    """The httpd under test. /r/ reverse-proxies to the backend's first port;
    forward-proxy requests for the backend's second port are authenticated in
    <Proxy>, so the two modes never share a section."""
    modules = ["authn_core", "authz_core", "authz_user", "auth_basic", "authn_file", "proxy", "proxy_http",
               *extra_modules]
    if kind == "floor":
        modules += ["authn_anon"]
    if kind == "socache":
        modules += ["socache_shmcb", "authn_socache"]
        global_extra += "\nAuthnCacheSOCache shmcb"
    if kind.startswith("gssapi"):
        modules += ["auth_gssapi"]
    if kind.endswith("-ldap"):
        modules += ["ldap", "authnz_ldap"]
        # mod_ldap's own caches, at their defaults made explicit.
        global_extra += "\nLDAPCacheEntries 1024\nLDAPCacheTTL 600\nLDAPOpCacheEntries 1024\nLDAPOpCacheTTL 600"
    auth = AUTH_BLOCKS[kind].format(file=user_file)
    b1, b2 = backend.port_list
    body = f"""{global_extra}
<Location "/r/">
  ProxyPass "http://127.0.0.1:{b1}/"
{indent(auth)}
</Location>
ProxyRequests On
<Proxy "http://127.0.0.1:{b2}/*">
{indent(auth)}
</Proxy>
"""
    return httpd(work, f"front-{kind}", modules, body, mpm=mpm, loglevel=loglevel, threads=threads,
                 auth_proxy=module if kind in ("proxy", "noauth", "proxy-ldap", "proxy-negotiate", "proxy-kerberos")
                 else None)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


class Squid:
    """One Squid instance: an accelerator port (reverse, cache_peer to the
    backend) and a forward-proxy port; no disk cache, nothing cached."""
    counter = 0

    def __init__(self, work: Path, backend: Server, user_file: Path | None, auth_program: str | None = None,
                 negotiate_program: str | None = None) -> None:
        Squid.counter += 1
        self.dir = work / f"squid-{Squid.counter}"
        self.dir.mkdir(parents=True)
        self.accel_port, self.forward_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        b1, _ = backend.port_list
        auth = ""
        access = "http_access allow all"
        if user_file is not None or auth_program is not None:
            program = auth_program or f"{NCSA_AUTH} {user_file}"
            auth = f"""auth_param basic program {program}
auth_param basic children 5 startup=5 idle=1
auth_param basic realm bench
auth_param basic credentialsttl 2 hours
authenticate_ttl 2 hours
acl authed proxy_auth REQUIRED
"""
            access = "http_access allow authed\nhttp_access deny all"
        if negotiate_program is not None:
            auth = f"""auth_param negotiate program {negotiate_program}
auth_param negotiate children 5 startup=5 idle=1
auth_param negotiate keep_alive on
acl authed proxy_auth REQUIRED
"""
            access = "http_access allow authed\nhttp_access deny all"
        self.text = f"""http_port 127.0.0.1:{self.accel_port} accel defaultsite=127.0.0.1:{b1} no-vhost name=accel
http_port 127.0.0.1:{self.forward_port} name=forward
acl accel_port myportname accel
cache_peer 127.0.0.1 parent {b1} 0 no-query no-digest originserver name=backend
cache_peer_access backend allow accel_port
cache_peer_access backend deny all
never_direct allow accel_port
{auth}{access}
cache deny all
cache_mem 16 MB
access_log none
cache_store_log none
cache_log {self.dir}/cache.log
pid_filename {self.dir}/squid.pid
coredump_dir {self.dir}
netdb_filename none
pinger_enable off
visible_hostname bench.invalid
shutdown_lifetime 1 seconds
"""
        if os.geteuid() == 0:
            self.text += "cache_effective_user proxy\n"
            shutil.chown(self.dir, "proxy", "proxy")

    def start(self) -> "Squid":
        conf = self.dir / "squid.conf"
        conf.write_text(self.text)
        with open(self.dir / "stderr.log", "wb") as stderr:
            self.proc = subprocess.Popen(["squid", "-N", "-f", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=stderr, start_new_session=True)
        for port in (self.accel_port, self.forward_port):
            if not wait_for_port(port, self.proc, 60):
                how = (f"exited with status {self.proc.returncode}" if self.proc.poll() is not None
                       else f"did not listen on port {port} within 60 s")
                raise RuntimeError(f"squid {how}\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        out = ""
        for name in ("stderr.log", "cache.log"):
            try:
                out += (self.dir / name).read_text(errors="replace")
            except FileNotFoundError:
                pass
        return out

    def stop(self) -> None:
        terminate(self.proc, timeout=10)
        self.proc = None
