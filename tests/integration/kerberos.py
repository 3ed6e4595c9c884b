"""A real MIT Kerberos realm for the tests: a krb5kdc on a loopback port
with its database, configuration and log in a scratch directory, its
principals made with kadmin.local, service keytabs, and client ccaches
filled by kinit. Nothing outside that directory is read or written: every
process gets KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5CCNAME (env()) pointing
at generated files, so /etc/krb5.conf plays no part.

Also a Negotiate (SPNEGO) client built on python3-gssapi, for the requests
curl will not make: a token for a chosen service name, sent by hand on a
kept-alive connection.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from harness import free_port, terminate, wait_for_port

REALM = "PROXY.TEST"
MASTER_PASSWORD = "kdc-master-secret"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SPNEGO_OID = "1.3.6.1.5.5.2"
PROBE_SERVICE = "probe/kdc"   # what expired_ccache() asks the KDC for


class Kdc:
    """krb5kdc for realm @p realm under @p directory, on 127.0.0.1 (TCP and UDP, one port).

    Client libraries are told not to canonicalize host names (no forward or
    reverse DNS), so the service a client asks for is HTTP/<the host it was
    given>; @p canonicalize=True leaves MIT's defaults (rdns and
    dns_canonicalize_hostname on), as on a machine without a krb5.conf.

    The KDC, clients and acceptors allow @p clockskew seconds (MIT's default
    is 300): the KDC still issues service tickets on a TGT that expired
    less than that ago, and an acceptor still takes them. One machine has
    one clock, so a short allowance costs nothing and lets a test see a
    ticket expire within seconds."""

    def __init__(self, directory: Path, realm: str = REALM, canonicalize: bool = False,
                 clockskew: int = 2) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)   # httpd's children read krb5.conf as the User
        self.realm = realm
        self.port = free_port()
        self.database = self.dir / "principal"
        self.stash = self.dir / "stash"
        self.log_file = self.dir / "kdc.log"
        self.pid_file = self.dir / "kdc.pid"
        self.kdc_conf = self.dir / "kdc.conf"
        self.krb5_conf = self.dir / "krb5.conf"
        self.clockskew = clockskew
        self.kdc_conf.write_text("\n".join([
            "[libdefaults]",
            f"    clockskew = {clockskew}",
            "[kdcdefaults]",
            f"    kdc_listen = 127.0.0.1:{self.port}",
            f"    kdc_tcp_listen = 127.0.0.1:{self.port}",
            "[realms]",
            f"    {realm} = {{",
            f"        database_name = {self.database}",
            f"        key_stash_file = {self.stash}",
            f"        acl_file = {self.dir / 'kadm5.acl'}",
            "        max_life = 10h 0m 0s",
            "        max_renewable_life = 7d 0h 0m 0s",
            "    }",
            "[logging]",
            f"    kdc = FILE:{self.log_file}",
            f"    admin_server = FILE:{self.dir / 'kadmin.log'}",
            f"    default = FILE:{self.dir / 'krb5lib.log'}",
            "",
        ]))
        dns = [] if canonicalize else ["    rdns = false", "    dns_canonicalize_hostname = false"]
        self.krb5_conf.write_text("\n".join([
            "[libdefaults]",
            f"    default_realm = {realm}",
            f"    clockskew = {clockskew}",
            "    dns_lookup_kdc = false",
            "    dns_lookup_realm = false",
            *dns,
            # TCP only: one listening socket to wait for, no UDP retries.
            "    udp_preference_limit = 1",
            f"    default_ccache_name = FILE:{self.dir / 'ccache-default'}",
            "[realms]",
            f"    {realm} = {{",
            f"        kdc = 127.0.0.1:{self.port}",
            "    }",
            "[domain_realm]",
            f"    localhost = {realm}",
            f"    127.0.0.1 = {realm}",
            "",
        ]))
        os.chmod(self.krb5_conf, 0o644)
        self.proc: subprocess.Popen | None = None

    # -- environment
    def env(self, ccache: Path | str | None = None, base: dict | None = None) -> dict:
        """@p base (default: this process's environment) with the realm's
        configuration, and KRB5CCNAME=@p ccache when given (else a ccache of
        this directory that nobody fills, so that no ticket of the machine's
        own is ever used)."""
        env = dict(os.environ if base is None else base)
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env["KRB5_KDC_PROFILE"] = str(self.kdc_conf)
        env["KRB5CCNAME"] = f"FILE:{ccache}" if ccache else f"FILE:{self.dir / 'ccache-none'}"
        env.pop("KRB5_KTNAME", None)
        env.pop("KRB5_CLIENT_KTNAME", None)
        return env

    def server_env(self, rcache_dir: Path | str) -> dict:
        """What an acceptor (httpd) needs in its environment: the realm's
        configuration and a replay cache of its own in @p rcache_dir."""
        env = {"KRB5_CONFIG": str(self.krb5_conf), "KRB5RCACHEDIR": str(rcache_dir)}
        os.makedirs(rcache_dir, exist_ok=True)
        os.chmod(rcache_dir, 0o1777)
        return env

    def _run(self, args: list[str], input: str | None = None, env: dict | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, input=input, text=True, capture_output=True, timeout=60,
                              env=env or self.env())
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    # -- life cycle
    def start(self) -> "Kdc":
        """Creates the database on the first start; a later start (after
        stop(), for a KDC outage) serves the same principals and keys."""
        if not self.stash.exists():
            self._run(["kdb5_util", "create", "-s", "-r", self.realm, "-P", MASTER_PASSWORD])
        self.log = open(self.dir / "krb5kdc.out", "ab")
        # -n: in the foreground, so the pid is ours to stop; -P: its pid file all the same.
        self.proc = subprocess.Popen(["krb5kdc", "-n", "-r", self.realm, "-P", str(self.pid_file)],
                                     stdout=self.log, stderr=self.log, env=self.env())
        if not wait_for_port(self.port, self.proc, timeout=20):
            self.stop()
            raise RuntimeError(f"krb5kdc did not listen: {self.log_text()[-2000:]}")
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- principals and keys
    def kadmin(self, query: str) -> str:
        """One kadmin.local query against this realm's database; its output."""
        return self._run(["kadmin.local", "-r", self.realm, "-q", query]).stdout

    def add_user(self, name: str, password: str, maxlife: str | None = None) -> str:
        """Adds @p name@REALM with @p password (and a maximum ticket life such
        as "20 seconds"); returns the full principal name."""
        life = f' -maxlife "{maxlife}"' if maxlife else ""
        self.kadmin(f'addprinc -pw "{password}"{life} {name}')
        return f"{name}@{self.realm}"

    def add_service(self, name: str) -> str:
        """Adds the service principal @p name (e.g. "HTTP/localhost") with a random key."""
        self.kadmin(f"addprinc -randkey {name}")
        return f"{name}@{self.realm}"

    def keytab(self, path: Path | str, *principals: str) -> Path:
        """Writes the current keys of @p principals to the keytab @p path
        (-norandkey: the keys the KDC issues tickets for stay valid)."""
        path = Path(path)
        for principal in principals:
            self.kadmin(f"ktadd -k {path} -norandkey {principal}")
        return path

    def keytab_principals(self, path: Path | str) -> list[str]:
        """The principals klist -k lists in the keytab @p path (once per key)."""
        out = self._run(["klist", "-k", str(path)]).stdout
        return re.findall(r"^\s*\d+\s+(\S+)$", out, re.M)

    # -- client tickets
    def kinit(self, principal: str, password: str, ccache: Path | str, lifetime: str | None = None) -> Path:
        """Fills the ccache @p ccache with a TGT for @p principal (password on
        stdin, as a user types it); @p lifetime as kinit -l takes it ("5s")."""
        ccache = Path(ccache)
        life = ["-l", lifetime] if lifetime else []
        self._run(["kinit", *life, principal], input=password + "\n", env=self.env(ccache))
        return ccache

    def has_valid_ticket(self, ccache: Path | str) -> bool:
        """klist -s: the ccache holds a ticket that has not expired."""
        return self._run(["klist", "-s"], env=self.env(ccache), check=False).returncode == 0

    def expired_ccache(self, principal: str, password: str, ccache: Path | str, lifetime_s: int = 2,
                       timeout: float = 30.0) -> Path:
        """A ccache whose only TGT has expired: kinit for @p lifetime_s seconds,
        then wait until klist -s calls it expired and kvno can no longer get
        a service ticket with it (MIT's client library, like its KDC and
        acceptors, allows the clock skew past the end time). kvno works on a
        copy and asks for a service of the KDC's own (PROBE_SERVICE), so that
        @p ccache holds the TGT alone."""
        ccache = Path(ccache)
        if f"{PROBE_SERVICE}@{self.realm}" not in self.kadmin("listprincs"):
            self.add_service(PROBE_SERVICE)
        self.kinit(principal, password, ccache, lifetime=f"{lifetime_s}s")
        probe = ccache.with_name(ccache.name + ".probe")
        deadline = time.time() + timeout
        while self.has_valid_ticket(ccache) or self._still_gets_service_tickets(ccache, probe):
            if time.time() > deadline:
                raise RuntimeError(f"the ticket in {ccache} did not expire within {timeout} s")
            time.sleep(0.2)
        probe.unlink(missing_ok=True)
        return ccache

    def _still_gets_service_tickets(self, ccache: Path, probe: Path) -> bool:
        """kvno on a copy of @p ccache: True while a service ticket can still be had with its TGT."""
        shutil.copyfile(ccache, probe)
        return self._run(["kvno", "-c", str(probe), f"{PROBE_SERVICE}@{self.realm}"],
                         env=self.env(probe), check=False).returncode == 0

    def service_tickets(self, ccache: Path | str) -> list[str]:
        """The service principals klist lists in @p ccache (the TGT included)."""
        out = self._run(["klist", str(ccache)], env=self.env(ccache), check=False).stdout
        return re.findall(r"^\S+ \S+\s+\S+ \S+\s+(\S+)$", out, re.M)

    # -- what the KDC was asked
    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def as_requests(self, client: str) -> int:
        """AS exchanges the KDC answered for @p client (e.g. "alice@PROXY.TEST")."""
        return len(re.findall(rf"AS_REQ .*: ISSUE: .* {re.escape(client)} for krbtgt/", self.log_text()))

    def tgs_requests(self) -> list[tuple[str, str]]:
        """(client, service) of every service ticket the KDC issued, in order:
        which SPN each client asked for."""
        return re.findall(r"TGS_REQ .*: ISSUE: .*, (\S+) for (\S+)$", self.log_text(), re.M)


# ---------------------------------------------------------------- python3-gssapi client

def negotiate_context(host: str, ccache: Path | str, service: str = "HTTP"):
    """A SPNEGO initiator for @p service@@p host (a host-based service name,
    as curl and browsers build it) with the TGT in @p ccache. KRB5_CONFIG
    must be set in this process (Kdc.env())."""
    import gssapi   # python3-gssapi: only the Kerberos tests need it

    name = gssapi.Name(f"{service}@{host}", gssapi.NameType.hostbased_service)
    creds = gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"})
    return gssapi.SecurityContext(name=name, creds=creds, usage="initiate",
                                  mech=gssapi.OID.from_int_seq(SPNEGO_OID))


def negotiate_header(host: str, ccache: Path | str, service: str = "HTTP") -> str:
    """The value of a Proxy-Authorization header with a fresh SPNEGO token for @p service@@p host."""
    token = negotiate_context(host, ccache, service).step()
    return "Negotiate " + base64.b64encode(token).decode("ascii")
