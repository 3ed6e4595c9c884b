"""The differential oracle: stock httpd and mod_auth_proxy, one generated
configuration, the same requests, compared one by one.

A seeded generator builds a *scenario*: credential stores (htpasswd files in
every format htpasswd writes, DBM files written by htdbm, sqlite3 tables
read through mod_dbd, and views of one slapd directory: two subtrees, a
filter in AuthLDAPURL, AuthLDAPRemoteUserAttribute), an AuthGroupFile, and
<Location> scopes in three virtual hosts (two name-based on one port, one on
a port of its own), some nested with AuthMerging, each with a provider chain
and a Require tree (user, group, valid-user, ip, RequireAny/RequireAll,
negation). The scenario is rendered twice: for stock httpd (AuthType Basic,
AuthBasicProvider, credentials in Authorization, 401) and for the module
(AuthType ProxyBasic, AuthProxyProvider, Proxy-Authorization, 407), both
reverse-proxying to one echo backend that reports the REMOTE_USER httpd set.

Then a seeded sequence of *steps* runs on both servers: requests (a source
address in 127.0.0.0/8, a scope, a user, and the right password, another
store's, a wrong or unknown one, variants a hash truncates) interleaved with
edits of the stores (htpasswd, htdbm, SQL, ldapmodify, the group file, a
chmod, and the server's User replacing its user file by a symbolic link to a
root-only file). Every request must get the same class of answer from both
(admitted with the same REMOTE_USER, challenged with the same realm, 403,
500). After each edit that makes a user file unreadable, and at the end,
nothing the User can read under the module's runtime directory may contain
a hash the User could not read at its source.

The module's documented exceptions are modelled, nothing else:
- the guessing throttle is configured so that it never triggers;
- a credential verified by a checking store (dbm, dbd, ldap) may keep being
  admitted for AuthProxyCacheTimeout after it changed at the store
  (docs/directives.md, AuthProxyCacheTimeout), but only where the same store
  configuration in the same virtual host verified it (whatever
  authorization then answered), and as the same REMOTE_USER; where
  authorization refuses that user, the module refuses (403 or a challenge
  in the scope's realm) where stock refused with a challenge or with the
  500 of a later provider it could not read;
- a password just set at a checking store may be refused for
  FAILURE_GRACE seconds after the edit (the failure memory); the
  module is asked again until then.

User files are edited on a copy that is then moved into place (htpasswd
rewrites a file in place, and the module serves what it read of a file
caught mid-write, APX02005): after each edit both servers answer from the
new version, stock at once, the module once it has logged taking it up.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import os
import pwd
import random
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from directory_servers import SUFFIX, Slapd
from harness import Backend, Httpd, as_server_user, readable_files_holding

USERS = ["alice", "bob", "carol", "dave"]
UNKNOWN_USER = "zed"
REALMS = ["Realm One", "Realm Two", "Inner Realm"]
VHOSTS = [("a.test", 0), ("b.test", 0), ("c.test", 1)]   # (ServerName, index of the port)
DROPPED = "(none)"          # the vhost of a scope left out of a reduced configuration
SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.9", "127.0.1.2", "127.0.1.7"]
IP_BLOCKS = ["127.0.0.0/30", "127.0.0.8/29", "127.0.1.0/24", "127.0.0.3"]
GROUPS = ["admins", "staff"]
LDAP_OUS = ["people", "staff"]

# What htpasswd writes: bcrypt (lowest cost, for speed), APR1-MD5, {SHA},
# crypt, SHA-256/512 crypt, and plain text (refused by both on Linux:
# APR hands it to crypt(), which never returns the plain text).
FILE_FORMATS = [("-B", "-C", "4"), ("-m",), ("-s",), ("-d",), ("-2",), ("-5",), ("-p",)]
DBM_FORMATS = [("-B", "-C", "4"), ("-m",), ("-s",), ("-d",), ("-p",)]
DBD_FORMATS = [("-B", "-C", "4"), ("-m",), ("-s",), ("-2",)]
CHECKING_KINDS = ("dbm", "dbd", "ldap")

CACHE_TTL = 300.0

# For looking past known differences: module-only directives appended to the
# generated ones (";"-separated, e.g. "AuthProxyCacheTimeout 0;AuthProxyThrottle Off"),
# and edit operations the generator leaves out (e.g. "chmod,symlink-attack";
# "leak-check" leaves out the privilege walk).
# Both change what a seed means: failure reports print them.
MODULE_EXTRA = [d.strip() for d in os.environ.get("AUTH_PROXY_DIFF_MODULE_EXTRA", "").split(";") if d.strip()]
SKIP_OPS = {o.strip() for o in os.environ.get("AUTH_PROXY_DIFF_SKIP_OPS", "").split(",") if o.strip()}


def settings_line() -> str:
    """The environment that changes what a seed means, for a failure report."""
    out = []
    if MODULE_EXTRA:
        out.append(f"AUTH_PROXY_DIFF_MODULE_EXTRA='{';'.join(MODULE_EXTRA)}'")
    if SKIP_OPS:
        out.append(f"AUTH_PROXY_DIFF_SKIP_OPS={','.join(sorted(SKIP_OPS))}")
    return " ".join(out)


def password_pool(user: str) -> list[str]:
    """Every password a generated step may give @p user: short ones, ones of
    exactly 8 characters (crypt reads 8), and two that share their first 72
    bytes (bcrypt reads 72). Stores and wrong guesses draw from the same
    pool, so an edit often sets a password somebody has just tried."""
    return ([f"{user}-{k}" for k in range(4)] + [f"{user[:3]}pw{k:03d}" for k in range(2)]
            + ["L" * 72 + f"{user}-a", "L" * 72 + f"{user}-b"])


def secret_password(user: str) -> str:
    return f"{user}-root-only"


# ---------------------------------------------------------------- the scenario model

@dataclass
class Store:
    name: str
    kind: str                      # file | dbm | dbd | ldap
    entries: dict = field(default_factory=dict)   # user -> (password, htpasswd flags); not for ldap
    mode: int = 0o644              # file: the mode of the user file
    attacked: bool = False         # file: replaced by the User with a symlink to a root-only file
    ou: str = ""                   # ldap: the subtree searched
    admins_only: bool = False      # ldap: (employeeType=admin) in AuthLDAPURL
    mail_as_user: bool = False     # ldap: AuthLDAPRemoteUserAttribute mail

    @property
    def checking(self) -> bool:
        return self.kind in CHECKING_KINDS


@dataclass
class Scope:
    sid: int
    vhost: str
    path: str
    parent: int | None             # the enclosing scope, for a nested <Location>
    chain: list                    # store names, in provider order
    realm: str | None              # None: inherited
    group_file: bool
    merging: str | None            # AuthMerging of a nested scope
    require: object                # a tree: ("user", [...]) ("group", g) ("valid-user",) ("ip", b)
                                   # ("not-ip", b) ("any", [..]) ("all", [..]); None: inherited
    forbidden_on_failure: bool = False


@dataclass
class Scenario:
    seed: int
    mpm: str
    stores: dict                   # name -> Store
    directory: dict                # (ou, uid) -> {"password", "type", "mail"}
    groups: dict                   # group -> [members]
    scopes: list
    secret: dict                   # user -> password of the root-only file

    def store(self, name: str) -> Store:
        return self.stores[name]

    def used_stores(self) -> set:
        return {name for scope in self.scopes if scope.vhost != DROPPED for name in scope.chain}


@dataclass
class Step:
    kind: str                      # "request" or "edit"
    # request
    vhost: str = ""
    path: str = ""
    scope: int = -1
    source: str = ""
    user: str | None = None
    password: str | None = None
    why: str = ""                  # how the password was chosen
    # edit
    store: str = ""
    op: str = ""
    args: tuple = ()

    def describe(self) -> str:
        if self.kind == "request":
            creds = "no credentials" if self.user is None else f"{self.user}:{self.password!r} ({self.why})"
            return f"GET http://{self.vhost}{self.path} from {self.source} with {creds}"
        args = [f"0{a:o}" if self.op == "chmod" else repr(a) for a in self.args]
        return f"edit {self.store}: {self.op} {' '.join(args)}"


def generate_scenario(seed: int) -> Scenario:
    rng = random.Random(seed)
    stores: dict = {}
    for i in range(rng.randint(1, 3)):
        name = f"file{i}"
        stores[name] = Store(name, "file")
    for i in range(rng.randint(0, 2)):
        stores[f"dbm{i}"] = Store(f"dbm{i}", "dbm")
    for i in range(rng.randint(0, 2)):
        stores[f"dbd{i}"] = Store(f"dbd{i}", "dbd")
    ldap_views = [("people", False, False), ("people", True, False), ("people", False, True), ("staff", False, False),
                  ("staff", True, True)]
    for i, (ou, admins, mail) in enumerate(rng.sample(ldap_views, rng.randint(0, 3))):
        stores[f"ldap{i}"] = Store(f"ldap{i}", "ldap", ou=ou, admins_only=admins, mail_as_user=mail)

    for store in stores.values():
        if store.kind == "ldap":
            continue
        formats = {"file": FILE_FORMATS, "dbm": DBM_FORMATS, "dbd": DBD_FORMATS}[store.kind]
        for user in rng.sample(USERS, rng.randint(2, len(USERS))):
            store.entries[user] = (rng.choice(password_pool(user)), rng.choice(formats))

    directory = {}
    for ou in LDAP_OUS:
        for user in rng.sample(USERS, rng.randint(2, len(USERS))):
            directory[(ou, user)] = {"password": rng.choice(password_pool(user)),
                                     "type": rng.choice(["admin", "staff"]),
                                     "mail": f"{user}@{ou}.example.com"}
    members = USERS + [f"{u}@people.example.com" for u in USERS]
    groups = {g: rng.sample(members, rng.randint(1, 4)) for g in GROUPS}

    scopes: list = []
    names = list(stores)
    for sid in range(rng.randint(2, 4)):
        vhost = rng.choice(VHOSTS)[0]
        scopes.append(Scope(sid, vhost, f"/s{sid}", None, random_chain(rng, stores, names, None),
                            rng.choice(REALMS[:2]), rng.random() < 0.6, None, random_require(rng, 2),
                            rng.random() < 0.15))
    for parent in list(scopes):
        if rng.random() < 0.5:
            sid = len(scopes)
            chain = parent.chain if rng.random() < 0.5 else random_chain(rng, stores, names, parent)
            realm = rng.choice([None, REALMS[2]])
            require = random_require(rng, 1) if rng.random() < 0.8 else None
            scopes.append(Scope(sid, parent.vhost, parent.path + "/in", parent.sid, list(chain), realm,
                                parent.group_file or rng.random() < 0.3, rng.choice(["Off", "And", "Or"]),
                                require, parent.forbidden_on_failure))
    secret = {u: secret_password(u) for u in ("alice", "bob")}
    return Scenario(seed, "prefork" if rng.random() < 0.25 else "event", stores, directory, groups, scopes, secret)


def random_chain(rng: random.Random, stores: dict, names: list, parent: Scope | None) -> list:
    """One to three stores of distinct kinds, in a random order (a scope has
    one AuthUserFile, one AuthDBMUserFile, ...)."""
    by_kind: dict = {}
    for name in names:
        by_kind.setdefault(stores[name].kind, []).append(name)
    kinds = rng.sample(sorted(by_kind), min(len(by_kind), rng.choice([1, 1, 2, 2, 3])))
    chain = []
    for kind in kinds:
        choices = by_kind[kind]
        if kind == "ldap" and parent is not None:
            # mod_authnz_ldap does not merge per-directory settings: keep the
            # inner scope's remote-user attribute consistent with the outer one.
            outer = [stores[n] for n in parent.chain if stores[n].kind == "ldap"]
            if outer:
                choices = [n for n in choices if stores[n].mail_as_user == outer[0].mail_as_user]
        chain.append(rng.choice(choices))
    return chain


def random_require(rng: random.Random, depth: int):
    def leaf():
        roll = rng.random()
        if roll < 0.35:
            return ("valid-user",)
        if roll < 0.6:
            return ("user", rng.sample(USERS + ["carol@people.example.com"], rng.randint(1, 2)))
        if roll < 0.8:
            return ("group", rng.choice(GROUPS))
        return ("ip", rng.choice(IP_BLOCKS))
    if depth <= 0 or rng.random() < 0.5:
        return leaf()
    kind = rng.choice(["any", "all"])
    children = [random_require(rng, depth - 1) for _ in range(rng.randint(2, 3))]
    if kind == "all" and rng.random() < 0.4:
        children.append(("not-ip", rng.choice(IP_BLOCKS)))
    return (kind, children)


def generate_steps(scenario: Scenario, count: int) -> list:
    """The step sequence of @p scenario: the edits it makes change a copy of
    the model, so that later steps pick passwords that are right *now*."""
    rng = random.Random(scenario.seed * 7919 + 1)
    model = dataclasses.replace(scenario, stores={k: dataclasses.replace(v, entries=dict(v.entries))
                                                  for k, v in scenario.stores.items()},
                                directory={k: dict(v) for k, v in scenario.directory.items()},
                                groups={k: list(v) for k, v in scenario.groups.items()})
    used = sorted(scenario.used_stores())
    steps = []
    for _ in range(count):
        if rng.random() < 0.1:
            step = random_edit(rng, model, used)
            if step is not None and step.op not in SKIP_OPS:
                apply_to_model(model, step)
                steps.append(step)
                continue
        steps.append(random_request(rng, model))
    return steps


def current_password(model: Scenario, store: Store, user: str) -> str | None:
    if store.kind == "ldap":
        entry = model.directory.get((store.ou, user))
        return entry["password"] if entry else None
    entry = store.entries.get(user)
    return entry[0] if entry else None


def random_request(rng: random.Random, model: Scenario) -> Step:
    scope = rng.choice(model.scopes)
    vhost = scope.vhost
    path = f"{scope.path}/x"
    source = rng.choice(SOURCES)
    if rng.random() < 0.08:
        return Step("request", vhost, path, scope.sid, source, None, None, "none")
    user = UNKNOWN_USER if rng.random() < 0.07 else rng.choice(USERS)
    roll = rng.random()
    own = [current_password(model, model.store(n), user) for n in scope.chain]
    own = [p for p in own if p is not None]
    others = [current_password(model, s, user) for s in model.stores.values() if s.name not in scope.chain]
    others = [p for p in others if p is not None]
    if roll < 0.45 and own:
        return Step("request", vhost, path, scope.sid, source, user, rng.choice(own), "right here")
    if roll < 0.65 and others:
        return Step("request", vhost, path, scope.sid, source, user, rng.choice(others), "another store's")
    if roll < 0.72 and own:
        return Step("request", vhost, path, scope.sid, source, user, rng.choice(own) + "Z", "right + suffix")
    if roll < 0.76 and user in model.secret:
        return Step("request", vhost, path, scope.sid, source, user, model.secret[user], "root-only file's")
    return Step("request", vhost, path, scope.sid, source, user, rng.choice(password_pool(user)), "from the pool")


def random_edit(rng: random.Random, model: Scenario, used: list) -> Step | None:
    if not used:
        return None
    if rng.random() < 0.1:
        group = rng.choice(GROUPS)
        members = USERS + [f"{u}@people.example.com" for u in USERS]
        return Step("edit", store="groups", op="set-group", args=(group, tuple(rng.sample(members, rng.randint(0, 3)))))
    store = model.store(rng.choice(used))
    user = rng.choice(USERS)
    new = rng.choice(password_pool(user))
    if store.kind == "file":
        if store.attacked:
            return Step("edit", store=store.name, op="restore")
        roll = rng.random()
        if roll < 0.1:
            return Step("edit", store=store.name, op="symlink-attack")
        if roll < 0.2:
            return Step("edit", store=store.name, op="chmod", args=(0o644 if store.mode == 0o600 else 0o600,))
        if roll < 0.35:
            return Step("edit", store=store.name, op="delete", args=(user,))
        return Step("edit", store=store.name, op="set", args=(user, new, rng.choice(FILE_FORMATS)))
    if store.kind in ("dbm", "dbd"):
        if rng.random() < 0.2:
            return Step("edit", store=store.name, op="delete", args=(user,))
        formats = DBM_FORMATS if store.kind == "dbm" else DBD_FORMATS
        return Step("edit", store=store.name, op="set", args=(user, new, rng.choice(formats)))
    key = (store.ou, user)
    roll = rng.random()
    if key not in model.directory:
        return Step("edit", store=store.name, op="ldap-add", args=(store.ou, user, new, rng.choice(["admin", "staff"])))
    if roll < 0.55:
        return Step("edit", store=store.name, op="ldap-password", args=(store.ou, user, new))
    if roll < 0.75:
        return Step("edit", store=store.name, op="ldap-type",
                    args=(store.ou, user, "staff" if model.directory[key]["type"] == "admin" else "admin"))
    if roll < 0.9:
        mail = f"{user}.{rng.randint(0, 9)}@{store.ou}.example.com"
        return Step("edit", store=store.name, op="ldap-mail", args=(store.ou, user, mail))
    return Step("edit", store=store.name, op="ldap-delete", args=(store.ou, user))


def apply_to_model(model: Scenario, step: Step) -> None:
    if step.store == "groups":
        group, members = step.args
        model.groups[group] = list(members)
        return
    store = model.store(step.store)
    op = step.op
    if op == "set":
        store.entries[step.args[0]] = (step.args[1], step.args[2])
    elif op == "delete":
        store.entries.pop(step.args[0], None)
    elif op == "chmod":
        store.mode = step.args[0]
    elif op == "symlink-attack":
        store.attacked = True
    elif op == "restore":
        store.attacked = False
    elif op == "ldap-add":
        ou, user, password, kind = step.args
        model.directory[(ou, user)] = {"password": password, "type": kind, "mail": f"{user}@{ou}.example.com"}
    elif op == "ldap-password":
        model.directory[(step.args[0], step.args[1])]["password"] = step.args[2]
    elif op == "ldap-type":
        model.directory[(step.args[0], step.args[1])]["type"] = step.args[2]
    elif op == "ldap-mail":
        model.directory[(step.args[0], step.args[1])]["mail"] = step.args[2]
    elif op == "ldap-delete":
        model.directory.pop((step.args[0], step.args[1]), None)


def knows(model: Scenario, store: Store, user: str) -> bool:
    """Whether @p store would answer for @p user rather than say "not found"."""
    if store.kind == "ldap":
        entry = model.directory.get((store.ou, user))
        return entry is not None and (not store.admins_only or entry["type"] == "admin")
    if store.kind == "file" and (store.mode == 0o600 or store.attacked):
        return True   # an unreadable file answers with an error
    return user in store.entries


def verifies(model: Scenario, store: Store, user: str, password: str) -> bool:
    """Whether @p store, as the model holds it now, accepts @p password for
    @p user: a hash reads what its format reads (crypt 8 bytes, bcrypt 72),
    and a plain-text entry accepts nothing (APR hands it to crypt())."""
    if not knows(model, store, user):
        return False
    if store.kind == "ldap":
        return model.directory[(store.ou, user)]["password"] == password
    if store.kind == "file" and (store.mode == 0o600 or store.attacked):
        return False
    stored, flags = store.entries[user]
    if "-p" in flags:
        return False
    read = 8 if "-d" in flags else 72 if "-B" in flags else None
    return password[:read] == stored[:read]


def remote_user_of(model: Scenario, store: Store, user: str) -> str:
    """The REMOTE_USER that @p store sets for @p user (AuthLDAPRemoteUserAttribute)."""
    if store.kind == "ldap" and store.mail_as_user:
        return model.directory[(store.ou, user)]["mail"]
    return user


def effective_realm(model: Scenario, scope: Scope) -> str | None:
    while scope.realm is None and scope.parent is not None:
        scope = model.scopes[scope.parent]
    return scope.realm


# ---------------------------------------------------------------- rendering

def render_require(node, indent: str = "    ") -> str:
    kind = node[0]
    if kind == "valid-user":
        return f"{indent}Require valid-user\n"
    if kind == "user":
        return f"{indent}Require user {' '.join(node[1])}\n"
    if kind == "group":
        return f"{indent}Require group {node[1]}\n"
    if kind == "ip":
        return f"{indent}Require ip {node[1]}\n"
    if kind == "not-ip":
        return f"{indent}Require not ip {node[1]}\n"
    tag = "RequireAny" if kind == "any" else "RequireAll"
    inner = "".join(render_require(child, indent + "    ") for child in node[1])
    return f"{indent}<{tag}>\n{inner}{indent}</{tag}>\n"


@dataclass
class Paths:
    """Where a materialized scenario keeps its stores."""
    root: Path
    ldap_url: str = ""

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def secret_file(self) -> Path:
        return self.root / "secret" / "root-only-users"

    @property
    def sqlite(self) -> Path:
        return self.root / "db" / "users.sqlite"

    @property
    def group_file(self) -> Path:
        return self.root / "groups"

    def user_file(self, name: str) -> Path:
        return self.files / f"{name}.htpasswd"

    def dbm_file(self, name: str) -> Path:
        return self.root / "dbm" / f"{name}.db"


def ldap_url(paths: Paths, store: Store) -> str:
    attributes = "uid,mail" if store.mail_as_user else "uid"
    url = f"{paths.ldap_url}/ou={store.ou},{SUFFIX}?{attributes}"
    return url + ("?sub?(employeeType=admin)" if store.admins_only else "")


def render_scope(scenario: Scenario, scope: Scope, paths: Paths, module: bool, backend_url: str) -> str:
    lines = [f"<Location {scope.path}>"]
    if scope.parent is None:
        lines += [f"    ProxyPass {backend_url}{scope.path}",
                  '    RequestHeader set X-Remote-User "expr=%{REMOTE_USER}"',
                  f"    AuthType {'ProxyBasic' if module else 'Basic'}"]
    if scope.realm:
        lines.append(f'    AuthName "{scope.realm}"')
    kinds = [scenario.store(n).kind for n in scope.chain]
    lines.append(f"    {'AuthProxyProvider' if module else 'AuthBasicProvider'} {' '.join(kinds)}")
    # Every provider directive is written out in nested scopes too:
    # mod_authnz_ldap, for one, does not merge per-directory settings.
    for name in scope.chain:
        store = scenario.store(name)
        if store.kind == "file":
            lines.append(f"    AuthUserFile {paths.user_file(name)}")
        elif store.kind == "dbm":
            lines.append(f"    AuthDBMUserFile {paths.dbm_file(name)}")
        elif store.kind == "dbd":
            lines.append(f'    AuthDBDUserPWQuery "SELECT password FROM {name} WHERE user = %s"')
        else:
            lines.append(f'    AuthLDAPURL "{ldap_url(paths, store)}"')
            if store.mail_as_user:
                lines.append("    AuthLDAPRemoteUserAttribute mail")
    if scope.group_file:
        lines.append(f"    AuthGroupFile {paths.group_file}")
    if scope.merging:
        lines.append(f"    AuthMerging {scope.merging}")
    if scope.forbidden_on_failure:
        lines.append("    AuthzSendForbiddenOnFailure On")
    body = "\n".join(lines) + "\n"
    if scope.require is not None:
        body += render_require(scope.require)
    return body + "</Location>\n"


def render_config(scenario: Scenario, paths: Paths, module: bool, backend_url: str, ports: list) -> str:
    out = ["LDAPCacheEntries 0", "LDAPOpCacheEntries 0", "LDAPConnectionTimeout 5",
           "DBDriver sqlite3", f"DBDParams {paths.sqlite}"]
    if module:
        # The throttle stays on (its failure memory is part of what is
        # compared) but never locks anybody out.
        out += ["AuthProxyThrottle On", "AuthProxyThrottleFailures 1000000", "AuthProxyThrottleUserFailures 0",
                f"AuthProxyCacheTimeout {int(CACHE_TTL)}", *MODULE_EXTRA]
    out.append("")
    for name, port_index in VHOSTS:
        out.append(f"<VirtualHost 127.0.0.1:{ports[port_index]}>")
        out.append(f"    ServerName {name}")
        for scope in scenario.scopes:
            if scope.vhost == name:
                out.append(render_scope(scenario, scope, paths, module, backend_url))
        out.append("</VirtualHost>\n")
    return "\n".join(out)


# ---------------------------------------------------------------- the stores, for real

def run(*args: str, input: str | None = None) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True, input=input, timeout=60)


def user_account() -> pwd.struct_passwd:
    return pwd.getpwnam("www-data")


class Stores:
    """The scenario's stores on disk and in slapd, kept equal to the model."""

    def __init__(self, scenario: Scenario, root: Path) -> None:
        self.scenario = scenario
        self.paths = Paths(root)
        self.slapd: Slapd | None = None

    def materialize(self) -> None:
        p = self.paths
        for d in (p.files, p.secret_file.parent, p.sqlite.parent, p.dbm_file("x").parent):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        account = user_account()
        # Web applications often keep their htpasswd files where the User can write.
        os.chown(p.files, account.pw_uid, account.pw_gid)
        os.chmod(p.secret_file.parent, 0o700)
        p.secret_file.write_text("".join(self.hash_line(u, pw, ("-m",)) for u, pw in self.scenario.secret.items()))
        os.chmod(p.secret_file, 0o600)
        for store in self.scenario.stores.values():
            if store.kind == "file":
                self.write_user_file(store)
            elif store.kind == "dbm":
                for user, (password, flags) in store.entries.items():
                    self.dbm_set(store, user, password, flags)
        self.write_sqlite()
        self.write_groups()
        self.slapd = Slapd(p.root / "slapd").start()
        p.ldap_url = self.slapd.url
        entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n"]
        entries += [f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n" for ou in LDAP_OUS]
        entries += [self.ldap_entry(ou, user, e) for (ou, user), e in self.scenario.directory.items()]
        self.slapd.add("\n".join(entries))

    def stop(self) -> None:
        if self.slapd:
            self.slapd.stop()

    # -- files
    @staticmethod
    def hash_line(user: str, password: str, flags: tuple) -> str:
        out = subprocess.run(["htpasswd", "-nb", *flags, user, password], check=True, capture_output=True, text=True)
        return out.stdout.strip() + "\n"

    def replace_file(self, store: Store, edit) -> None:
        """Edits a copy of the user file with @p edit(path) and moves it into
        place, so that no reader ever sees it half written."""
        path = self.paths.user_file(store.name)
        tmp = path.with_suffix(".new")
        if path.exists() and not path.is_symlink():
            shutil.copyfile(path, tmp)
        else:
            tmp.write_text("")
        edit(tmp)
        os.chmod(tmp, store.mode)
        os.replace(tmp, path)

    def write_user_file(self, store: Store) -> None:
        # os.replace swaps a symbolic link for the file in one step: the
        # file is never missing, which both servers would answer with 500.
        text = "".join(self.hash_line(u, pw, f) for u, (pw, f) in store.entries.items())
        self.replace_file(store, lambda tmp: tmp.write_text(text))

    def file_set(self, store: Store, user: str, password: str, flags: tuple) -> None:
        self.replace_file(store, lambda tmp: run("htpasswd", "-b", *flags, str(tmp), user, password))

    def file_delete(self, store: Store, user: str) -> None:
        def edit(tmp):
            if user in store.entries:
                run("htpasswd", "-D", str(tmp), user)
        self.replace_file(store, edit)

    def symlink_attack(self, store: Store) -> None:
        """What the User can do to a file in a directory it can write: put a
        symbolic link to a root-only file in its place."""
        path = self.paths.user_file(store.name)
        as_server_user("import os, sys\nos.symlink(sys.argv[1], sys.argv[2] + '.evil')\n"
                       "os.rename(sys.argv[2] + '.evil', sys.argv[2])\n", str(self.paths.secret_file), str(path))

    # -- dbm, sql, ldap, groups
    def dbm_set(self, store: Store, user: str, password: str, flags: tuple) -> None:
        path = self.paths.dbm_file(store.name)
        exists = any(path.parent.glob(path.name + "*"))
        run("htdbm", "-b" + ("" if exists else "c"), *flags, str(path), user, password)
        for name in path.parent.glob(path.name + "*"):
            os.chmod(name, 0o644)

    def dbm_delete(self, store: Store, user: str) -> None:
        if user in store.entries:
            run("htdbm", "-x", str(self.paths.dbm_file(store.name)), user)

    def write_sqlite(self) -> None:
        script = []
        for store in self.scenario.stores.values():
            if store.kind != "dbd":
                continue
            script.append(f"CREATE TABLE {store.name} (user TEXT PRIMARY KEY, password TEXT);")
            for user, (password, flags) in store.entries.items():
                script.append(self.sql_set(store, user, password, flags))
        if not script:
            script.append("CREATE TABLE unused (x TEXT);")
        self.sql("\n".join(script))
        os.chmod(self.paths.sqlite, 0o644)

    def sql_set(self, store: Store, user: str, password: str, flags: tuple) -> str:
        hashed = self.hash_line(user, password, flags).strip().split(":", 1)[1]
        return f"INSERT OR REPLACE INTO {store.name} VALUES ('{user}', '{hashed}');"

    def sql(self, script: str) -> None:
        # mod_dbd may be reading: wait for its lock rather than fail at once.
        run("sqlite3", str(self.paths.sqlite), input=".timeout 10000\n" + script)

    @staticmethod
    def ldap_entry(ou: str, user: str, e: dict) -> str:
        return (f"dn: uid={user},ou={ou},{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {user}\ncn: {user}\n"
                f"sn: {user}\nuserPassword: {e['password']}\nemployeeType: {e['type']}\nmail: {e['mail']}\n")

    def ldap_modify(self, ldif: str) -> None:
        from directory_servers import ADMIN_DN, ADMIN_PASSWORD
        run("ldapmodify", "-x", "-H", self.slapd.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, input=ldif)

    def ldap_replace(self, ou: str, user: str, attribute: str, value: str) -> None:
        self.ldap_modify(f"dn: uid={user},ou={ou},{SUFFIX}\nchangetype: modify\nreplace: {attribute}\n"
                         f"{attribute}: {value}\n")

    def write_groups(self) -> None:
        text = "".join(f"{g}: {' '.join(m)}\n" for g, m in self.scenario.groups.items())
        tmp = self.paths.group_file.with_suffix(".new")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.paths.group_file)

    # -- one edit, on disk and in the model
    def apply(self, step: Step) -> None:
        scenario = self.scenario
        if step.store == "groups":
            apply_to_model(scenario, step)
            self.write_groups()
            return
        store = scenario.store(step.store)
        op, args = step.op, step.args
        if store.kind == "file":
            if op == "set":
                self.file_set(store, *args)
            elif op == "delete":
                self.file_delete(store, *args)
            elif op == "chmod":
                os.chmod(self.paths.user_file(store.name), args[0])
            elif op == "symlink-attack":
                self.symlink_attack(store)
            apply_to_model(scenario, step)
            if op == "restore":
                self.write_user_file(store)
            return
        if store.kind == "dbm":
            self.dbm_set(store, *args) if op == "set" else self.dbm_delete(store, *args)
        elif store.kind == "dbd":
            if op == "set":
                self.sql(self.sql_set(store, *args))
            else:
                self.sql(f"DELETE FROM {store.name} WHERE user = '{args[0]}';")
        elif op == "ldap-add":
            ou, user, password, kind = args
            entry = {"password": password, "type": kind, "mail": f"{user}@{ou}.example.com"}
            self.ldap_modify(self.ldap_entry(ou, user, entry).replace("\n", "\nchangetype: add\n", 1))
        elif op == "ldap-password":
            self.ldap_replace(args[0], args[1], "userPassword", args[2])
        elif op == "ldap-type":
            self.ldap_replace(args[0], args[1], "employeeType", args[2])
        elif op == "ldap-mail":
            self.ldap_replace(args[0], args[1], "mail", args[2])
        elif op == "ldap-delete":
            self.ldap_modify(f"dn: uid={args[1]},ou={args[0]},{SUFFIX}\nchangetype: delete\n")
        apply_to_model(scenario, step)

    # -- the privilege side
    def hashes_never_readable(self, ever_readable: set) -> set:
        """Hashes of user-file sources the User cannot open now, that no
        source it could open ever held."""
        out = {line.split(":", 1)[1] for line in self.paths.secret_file.read_text().splitlines() if ":" in line}
        for store in self.scenario.stores.values():
            if store.kind == "file" and store.mode == 0o600 and not store.attacked:
                out |= file_hashes(self.paths.user_file(store.name))
        return {h for h in out if h not in ever_readable and len(h) >= 13}

    def readable_hashes(self) -> set:
        out = set()
        for store in self.scenario.stores.values():
            if store.kind == "file" and store.mode != 0o600 and not store.attacked:
                out |= file_hashes(self.paths.user_file(store.name))
        return out


def file_hashes(path: Path) -> set:
    try:
        return {line.split(":", 1)[1] for line in path.read_text().splitlines() if ":" in line}
    except OSError:
        return set()


def leaked_hashes(run_dir: Path, needles: set) -> list:
    """[path, hash] for every needle found in a file the User can read under @p run_dir."""
    return readable_files_holding(run_dir, needles)


# ---------------------------------------------------------------- the two servers

@dataclass
class Observation:
    status: int
    remote_user: str | None = None   # what the backend saw, for an admitted request
    realm: str | None = None         # of a challenge

    def outcome(self, module: bool) -> str:
        challenge = 407 if module else 401
        if self.status == 200 and self.remote_user is not None:
            return f"admitted as {self.remote_user!r}"
        if self.status == challenge:
            return f"challenged, realm {self.realm!r}"
        if self.status in (403, 500):
            return f"{self.status}"
        return f"status {self.status}" + (" (not from the backend)" if self.status == 200 else "")


class Client:
    """One connection at a time per server, reused while the port and
    source address stay the same (prefork has few children to spare)."""

    def __init__(self, port_list: list) -> None:
        self.ports = port_list
        self.conn: http.client.HTTPConnection | None = None
        self.key = None

    def close(self) -> None:
        if self.conn:
            self.conn.close()
        self.conn, self.key = None, None

    def get(self, port: int, source: str, vhost: str, path: str, headers: dict) -> tuple:
        for attempt in range(2):
            if self.key != (port, source):
                self.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
                self.key = (port, source)
            try:
                self.conn.request("GET", path, headers={"Host": vhost, **headers})
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.will_close:
                    self.close()
                return resp, body
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Servers:
    """Stock httpd and httpd with the module, from one scenario."""

    MODULES = ["dbd", "authn_dbd", "authn_dbm", "ldap", "authnz_ldap"]

    def __init__(self, scenario: Scenario, stores: Stores, root: Path, backend: Backend) -> None:
        self.scenario, self.stores, self.backend = scenario, stores, backend
        self.stock = Httpd(root / "stock", mpm=scenario.mpm, ports=2, extra_modules=self.MODULES,
                           auth_proxy_module=None, settings={"LogLevel": "warn"})
        self.module = Httpd(root / "module", mpm=scenario.mpm, ports=2, extra_modules=self.MODULES)
        for h, is_module in ((self.stock, False), (self.module, True)):
            h.body = render_config(scenario, stores.paths, is_module, backend.url, h.port_list)
        self.clients = {id(self.stock): Client(self.stock.port_list), id(self.module): Client(self.module.port_list)}

    def start(self) -> None:
        self.stock.start()
        self.module.start()

    def stop(self) -> None:
        for c in self.clients.values():
            c.close()
        self.stock.stop()
        self.module.stop()

    def crashes(self) -> list:
        return self.stock.crashes() + self.module.crashes()

    def ask(self, h: Httpd, step: Step, module: bool) -> Observation:
        port = h.port_list[dict(VHOSTS)[step.vhost]]
        headers = {}
        if step.user is not None:
            token = base64.b64encode(f"{step.user}:{step.password}".encode()).decode()
            headers["Proxy-Authorization" if module else "Authorization"] = f"Basic {token}"
        resp, body = self.clients[id(h)].get(port, step.source, step.vhost, step.path, headers)
        obs = Observation(resp.status)
        if resp.status == 200 and resp.getheader("X-Backend") == "echo":
            seen = [v for k, v in json.loads(body)["headers"] if k.lower() == "x-remote-user"]
            obs.remote_user = seen[-1] if seen else ""
        challenge = resp.getheader("Proxy-Authenticate" if module else "WWW-Authenticate")
        if challenge:
            m = re.search(r'realm="((?:[^"\\]|\\.)*)"', challenge)
            obs.realm = m.group(1) if m else challenge
        return obs

    def wait_for_module(self, step: Step, timeout: float = 10.0) -> bool:
        """After an edit of a user file, until the module has taken up the
        state the edit left: its log says the file was (re)loaded, or, for
        a file the User cannot read, that it cannot be opened (APX02001
        "could not open password file", or "user file FILE cannot be opened
        by USER" where the User's rights open it). Only that state counts:
        a child may log the other one on its way there."""
        if step.store not in self.scenario.used_stores() or self.scenario.store(step.store).kind != "file":
            return True
        store = self.scenario.store(step.store)
        path = re.escape(str(self.stores.paths.user_file(step.store)))
        if store.mode == 0o600 or store.attacked:
            pattern = re.compile(rf"password file {path}: |user file {path} cannot be opened")
        else:
            pattern = re.compile(rf"loaded {path}: ")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pattern.search(self.module.log_since()):
                return True
            time.sleep(0.02)
        return False


# ---------------------------------------------------------------- running and comparing

@dataclass
class Grant:
    when: float
    identity: tuple     # (vhost, store name) that verified it
    user: str
    password: str
    remote_user: str           # as seen by the backend, or as the store sets it where authorization refused


@dataclass
class Difference:
    index: int          # of the step in the sequence run
    step: Step
    stock: str
    module: str
    kind: str           # "answer" or "leak"
    detail: str = ""

    def signature(self) -> tuple:
        return (self.kind, self.stock, self.module)


FAILURE_GRACE = float(os.environ.get("AUTH_PROXY_DIFF_FAILURE_GRACE", "5"))


class Run:
    """Materializes a scenario, starts both servers and runs steps, stopping at the first difference."""

    def __init__(self, scenario: Scenario, root: Path, backend: Backend, log=print) -> None:
        self.scenario = scenario
        self.root = root
        self.backend = backend
        self.log = log
        self.grants: list = []
        self.edited: dict = {}         # (store, user) -> monotonic time of the last edit
        self.ever_readable: set = set()
        self.notes: list = []
        self.tally: dict = {}          # outcome class -> requests that agreed on it, and "edits"

    def __enter__(self) -> "Run":
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        os.chmod(self.root, 0o755)
        self.stores = Stores(self.scenario, self.root)
        self.stores.materialize()
        self.servers = Servers(self.scenario, self.stores, self.root, self.backend)
        self.servers.start()
        self.ever_readable |= self.stores.readable_hashes()
        return self

    def __exit__(self, *exc) -> None:
        self.servers.stop()
        self.stores.stop()

    def configs(self) -> tuple:
        return self.servers.stock.config_text(), self.servers.module.config_text()

    def run(self, steps: list, deadline: float | None = None) -> Difference | None:
        """Runs @p steps (those before @p deadline, a monotonic time): the first difference, or None."""
        done = 0
        for i, step in enumerate(steps):
            if deadline is not None and time.monotonic() > deadline:
                break
            diff = self.edit(i, step) if step.kind == "edit" else self.request(i, step)
            if diff:
                return diff
            done = i + 1
        self.steps_run = done
        return self.check_leaks(done, None)

    def edit(self, i: int, step: Step) -> Difference | None:
        self.tally["edits"] = self.tally.get("edits", 0) + 1
        self.servers.module.mark_log()
        was_unreadable = self.unreadable(step.store)
        self.stores.apply(step)
        if step.args and step.store != "groups":
            now = time.monotonic()
            if step.op.startswith("ldap-"):
                # One directory behind every ldap store of that subtree.
                ou, user = step.args[0], step.args[1]
                for s in self.scenario.stores.values():
                    if s.kind == "ldap" and s.ou == ou:
                        self.edited[(s.name, user)] = now
            elif step.op in ("set", "delete"):
                self.edited[(step.store, step.args[0])] = now
        # A file that stays unreadable is refused before and after alike, and
        # the module says so once per breakage: nothing to wait for.
        if not (was_unreadable and self.unreadable(step.store)) and not self.servers.wait_for_module(step):
            self.notes.append(f"step {i}: the module logged no (re)load of {step.store} within 10 s")
        self.ever_readable |= self.stores.readable_hashes()
        if step.op in ("chmod", "symlink-attack"):
            return self.check_leaks(i, step)
        return None

    def unreadable(self, name: str) -> bool:
        store = self.scenario.stores.get(name)
        return store is not None and store.kind == "file" and (store.mode == 0o600 or store.attacked)

    def check_leaks(self, i: int, step: Step | None) -> Difference | None:
        if "leak-check" in SKIP_OPS:
            return None
        needles = self.stores.hashes_never_readable(self.ever_readable)
        found = leaked_hashes(self.servers.module.root / "run", needles)
        if not found:
            return None
        where = "; ".join(f"{path} holds {h!r}" for path, h in found[:5])
        return Difference(i, step or Step("edit", op="(end of run)"), "-", "-", "leak",
                          f"the User can read hashes it cannot read at their source: {where}")

    def request(self, i: int, step: Step) -> Difference | None:
        stock = self.servers.ask(self.servers.stock, step, False)
        module = self.servers.ask(self.servers.module, step, True)
        if self.same(stock, module):
            self.count(stock)
            self.remember(step, module)
            return None
        if self.stale_grant_allowed(step, stock, module):
            return None
        if self.fresh_password_refused(step, stock, module):
            module = self.ask_again_until_grace(step, stock, module)
            if self.same(stock, module):
                self.remember(step, module)
                return None
        return Difference(i, step, stock.outcome(False), module.outcome(True), "answer")

    def count(self, stock: Observation) -> None:
        kind = {200: "admitted", 401: "challenged"}.get(stock.status, str(stock.status))
        self.tally[kind] = self.tally.get(kind, 0) + 1

    def summary(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in sorted(self.tally.items()))

    @staticmethod
    def same(stock: Observation, module: Observation) -> bool:
        return stock.outcome(False) == module.outcome(True)

    def answering(self, scope: Scope, user: str) -> list:
        """The checking stores the module may answer from for @p user (every
        store of the chain up to the first that knows the user)."""
        out = []
        for name in scope.chain:
            store = self.scenario.store(name)
            if store.checking:
                out.append(store)
            if knows(self.scenario, store, user):
                break
        return out

    def remember(self, step: Step, module: Observation) -> None:
        """Notes a credential the module verified (and cached) at a checking
        store: admitted, refused by authorization with 403
        (AuthzSendForbiddenOnFailure), or refused by authorization with a
        challenge, which the model tells from a wrong password by the
        store's content."""
        if step.user is None:
            return
        admitted = module.status == 200 and module.remote_user is not None
        scope = self.scenario.scopes[step.scope]
        for name in scope.chain:
            s = self.scenario.store(name)
            if knows(self.scenario, s, step.user):
                authenticated = admitted or module.status == 403 or \
                    verifies(self.scenario, s, step.user, step.password)
                if s.checking and authenticated:
                    remote_user = module.remote_user if admitted else remote_user_of(self.scenario, s, step.user)
                    self.grants.append(Grant(time.monotonic(), (step.vhost, name), step.user, step.password,
                                             remote_user))
                return

    def stale_grant_allowed(self, step: Step, stock: Observation, module: Observation) -> bool:
        """docs/directives.md, AuthProxyCacheTimeout: a password changed (or
        a user removed) at a checking store keeps working for the cache's
        lifetime, where that store (in that virtual host) verified it, as
        the user it verified. Authorization then decides as for that user:
        admitted as the REMOTE_USER the store set, or refused (403 with
        AuthzSendForbiddenOnFailure, else challenged in the scope's realm)
        where stock refused, with a challenge or with 500 from a later
        provider it could not read."""
        if step.user is None:
            return False
        scope = self.scenario.scopes[step.scope]
        stock_refused = stock.status in (401, 500)
        admitted = module.status == 200 and module.remote_user is not None
        forbidden = module.status == 403 and scope.forbidden_on_failure and stock_refused
        challenged = (module.status == 407 and stock.status == 500
                      and module.realm == effective_realm(self.scenario, scope))
        if not (admitted or forbidden or challenged):
            return False
        now = time.monotonic()
        identities = {(step.vhost, s.name) for s in self.answering(scope, step.user)}
        for g in self.grants:
            if (g.identity in identities and g.user == step.user and g.password == step.password
                    and (not admitted or g.remote_user == module.remote_user) and now - g.when <= CACHE_TTL
                    and self.edited.get((g.identity[1], step.user), -1.0) > g.when):
                self.notes.append(f"{step.describe()}: stale grant from {g.identity} (documented cache lifetime)")
                return True
        return False

    def fresh_password_refused(self, step: Step, stock: Observation, module: Observation) -> bool:
        # Whatever stock answered (admitted, 403 from authorization, 500 from
        # a later provider in the chain), the module refused without asking.
        if stock.status == 401 or module.status != 407 or step.user is None:
            return False
        scope = self.scenario.scopes[step.scope]
        now = time.monotonic()
        return any(now - self.edited.get((s.name, step.user), -1e9) < FAILURE_GRACE
                   for s in self.answering(scope, step.user))

    def ask_again_until_grace(self, step: Step, stock: Observation, module: Observation) -> Observation:
        scope = self.scenario.scopes[step.scope]
        last_edit = max(self.edited.get((s.name, step.user), -1e9) for s in self.answering(scope, step.user))
        while time.monotonic() < last_edit + FAILURE_GRACE:
            time.sleep(0.2)
            module = self.servers.ask(self.servers.module, step, True)
            if self.same(stock, module):
                self.notes.append(f"{step.describe()}: refused for "
                                  f"{time.monotonic() - last_edit:.1f} s after the edit (failure memory)")
                return module
        return module


# ---------------------------------------------------------------- reducing a difference

def reproduces(scenario_seed: int, steps: list, root: Path, backend: Backend, signature: tuple,
               keep_scopes: set | None = None) -> bool:
    scenario = generate_scenario(scenario_seed)
    if keep_scopes is not None:
        scenario = restrict(scenario, keep_scopes)
    with Run(scenario, root, backend, log=lambda *a: None) as r:
        diff = r.run(steps)
    return diff is not None and diff.signature() == signature and diff.index == len(steps) - 1 \
        if signature[0] == "answer" else diff is not None and diff.signature() == signature


def restrict(scenario: Scenario, keep: set) -> Scenario:
    """@p scenario with only the scopes in @p keep (and their parents), renumbered not at all."""
    wanted = set(keep)
    for scope in scenario.scopes:
        if scope.sid in keep and scope.parent is not None:
            wanted.add(scope.parent)
    return dataclasses.replace(scenario, scopes=[s if s.sid in wanted else dataclasses.replace(s, vhost=DROPPED)
                                                 for s in scenario.scopes])


def shrink(scenario_seed: int, steps: list, diff: Difference, root: Path, backend: Backend,
           budget: float) -> tuple:
    """Removes steps (and unused scopes) while the same difference remains:
    a greedy delta debugging within @p budget seconds. Returns (steps, kept scope ids or None)."""
    deadline = time.monotonic() + budget
    current = steps[: diff.index + 1]
    signature = diff.signature()
    last = current[-1:]
    head = current[:-1]
    # Most differences need only a few earlier steps of the same user (a
    # grant, a failure, an edit): try those first, then remove chunks.
    user = last[0].user
    for keep in (lambda s: False, lambda s: s.user == user and s.user is not None or
                 (s.kind == "edit" and user is not None and user in s.args)):
        trial = [s for s in head if keep(s)]
        if len(trial) < len(head) and time.monotonic() < deadline and \
                reproduces(scenario_seed, trial + last, root, backend, signature):
            head = trial
            break
    chunk = max(1, len(head) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, removed = 0, False
        while i < len(head) and time.monotonic() < deadline:
            trial = head[:i] + head[i + chunk:]
            if reproduces(scenario_seed, trial + last, root, backend, signature):
                head, removed = trial, True
            else:
                i += chunk
        if not removed:
            chunk //= 2
    current = head + last
    used = {s.scope for s in current if s.kind == "request"}
    keep = None
    if time.monotonic() < deadline and reproduces(scenario_seed, current, root, backend, signature, used):
        keep = used
    return current, keep


def scenario_summary(scenario: Scenario) -> str:
    lines = [f"scenario {scenario.seed}: {scenario.mpm} MPM"]
    for s in scenario.stores.values():
        if s.kind == "ldap":
            lines.append(f"  {s.name}: ldap ou={s.ou}{' (employeeType=admin)' if s.admins_only else ''}"
                         f"{' REMOTE_USER=mail' if s.mail_as_user else ''}")
        else:
            lines.append(f"  {s.name}: {s.kind} " + ", ".join(f"{u}={pw!r} {' '.join(f)}"
                                                          for u, (pw, f) in s.entries.items()))
    lines.append("  directory: " + ", ".join(f"{u}@{ou}={e['password']!r}/{e['type']}"
                                             for (ou, u), e in scenario.directory.items()))
    lines.append("  groups: " + ", ".join(f"{g}={m}" for g, m in scenario.groups.items()))
    return "\n".join(lines)
