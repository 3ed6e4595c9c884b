"""Real credential stores for the tests (and the benchmark): an OpenLDAP
slapd on a loopback port with a generated configuration, started and
stopped by its pid; a sqlite3 users database for mod_dbd; DBM files
written with htdbm.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from harness import FAST_BCRYPT, free_port, terminate, wait_for_port

SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


class Slapd:
    """slapd with an mdb database under @p directory, listening on 127.0.0.1.

    Its stats log (connections, binds, searches) goes to logs/slapd.log,
    so a test can count what the directory was asked."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.data = self.dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_file = self.dir / "slapd.log"
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.conf = self.dir / "slapd.conf"
        schema = Path("/etc/ldap/schema")
        self.conf.write_text("\n".join([
            *(f"include {schema / name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")),
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            f"pidfile {self.dir / 'slapd.pid'}",
            "loglevel stats",
            "database mdb",
            f"suffix \"{SUFFIX}\"",
            f"rootdn \"{ADMIN_DN}\"",
            f"rootpw {ADMIN_PASSWORD}",
            f"directory {self.data}",
            "maxsize 104857600",
            "access to attrs=userPassword by anonymous auth by self read by * none",
            "access to * by * read",
            "",
        ]))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Slapd":
        self.log = open(self.log_file, "ab")
        # -d stats: in the foreground, the stats log on stderr.
        self.proc = subprocess.Popen(["slapd", "-f", str(self.conf), "-h", f"{self.url}/", "-d", "stats"],
                                     stdout=self.log, stderr=self.log)
        if not wait_for_port(self.port, self.proc, timeout=20):
            self.stop()
            raise RuntimeError(f"slapd did not listen: {self.log_file.read_text(errors='replace')[-2000:]}")
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def add(self, ldif: str) -> None:
        subprocess.run(["ldapadd", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
                       input=ldif, text=True, check=True, capture_output=True, timeout=30)

    def set_password(self, uid: str, password: str) -> None:
        """Sets uid=@p uid's userPassword with ldapmodify, as an administrator would."""
        ldif = f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nreplace: userPassword\nuserPassword: {password}\n"
        subprocess.run(["ldapmodify", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
                       input=ldif, text=True, check=True, capture_output=True, timeout=30)

    def add_tree(self, users: dict[str, str], groups: dict[str, list[str]] | None = None) -> None:
        """The base entries, @p users (uid -> password) under ou=people and
        @p groups (cn -> uids) as groupOfNames under ou=groups."""
        entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
                   f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
                   f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n"]
        entries += [self.user_ldif(uid, pw) for uid, pw in users.items()]
        for cn, members in (groups or {}).items():
            lines = [f"dn: cn={cn},{GROUPS}", "objectClass: groupOfNames", f"cn: {cn}"]
            lines += [f"member: uid={m},{PEOPLE}" for m in members]
            entries.append("\n".join(lines) + "\n")
        self.add("\n".join(entries))

    @staticmethod
    def user_ldif(uid: str, password: str) -> str:
        return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
                f"userPassword: {password}\n")

    def binds(self, uid: str) -> int:
        """Binds slapd saw as uid=@p uid so far (its stats log)."""
        text = self.log_file.read_text(errors="replace")
        return len(re.findall(rf'BIND dn="uid={re.escape(uid)},{re.escape(PEOPLE)}" method=128', text))

    def operations(self) -> int:
        """Every operation slapd logged so far (BIND, SRCH, CMP, ...)."""
        text = self.log_file.read_text(errors="replace")
        return len(re.findall(r" op=\d+ (?:BIND|SRCH|CMP) ", text))


def sqlite_users(path: Path, users: dict[str, str], groups: dict[str, list[str]] | None = None) -> None:
    """A sqlite3 database for mod_authn_dbd: users(user, password) with
    htpasswd hashes, and groups(user, grp)."""
    if path.exists():
        path.unlink()
    rows = []
    for user, password in users.items():
        hashed = subprocess.run(["htpasswd", "-nb", *FAST_BCRYPT, user, password], check=True, capture_output=True,
                                text=True).stdout.strip().split(":", 1)[1]
        rows.append(f"INSERT INTO users VALUES ('{user}', '{hashed}');")
    for group, members in (groups or {}).items():
        rows += [f"INSERT INTO groups VALUES ('{m}', '{group}');" for m in members]
    script = ("CREATE TABLE users (user TEXT PRIMARY KEY, password TEXT);\n"
              "CREATE TABLE groups (user TEXT, grp TEXT);\n" + "\n".join(rows) + "\n")
    subprocess.run(["sqlite3", str(path)], input=script, text=True, check=True, capture_output=True)
    os.chmod(path, 0o644)


def dbm_users(path: Path, users: dict[str, tuple[str, str]]) -> None:
    """A DBM file written by htdbm: user -> (password, groups) ("" for none)."""
    for name in (path, Path(str(path) + ".db"), Path(str(path) + ".pag"), Path(str(path) + ".dir")):
        if name.exists():
            name.unlink()
    for i, (user, (password, groups)) in enumerate(users.items()):
        args = ["htdbm", "-b" + ("c" if i == 0 else ""), "-B", "-C", "4"]
        args += ["-t", str(path), user, password, groups] if groups else [str(path), user, password]
        subprocess.run(args, check=True, capture_output=True)
    for name in path.parent.glob(path.name + "*"):
        os.chmod(name, 0o644)


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)
