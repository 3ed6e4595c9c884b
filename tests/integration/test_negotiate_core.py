"""The Negotiate core (ServiceKeys, GssAcceptor, spnego) outside httpd,
against a real MIT KDC (kerberos.Kdc) and real client tokens from
python3-gssapi, through tests/tools/negotiate_tool.

What it proves: the keytab is read once, as root, and the keys then serve a
process that runs as the server's User and cannot read the file, also after
a fork; a valid token names the client and its local name; each refusal
(replay, expired ticket, wrong service, garbled token, foreign realm) gets
its own status; and a replay is refused by another process that shares the
replay cache, as httpd's children would.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import select
import subprocess
import time
from pathlib import Path

import pytest

from harness import run_user
from kerberos import REALM, USERS, negotiate_header

TOOL = os.environ.get("AUTH_PROXY_NEGOTIATE_TOOL", "")
SERVICES = ["HTTP/localhost", "HTTP/127.0.0.1"]
OTHER_SERVICE = "HTTP/elsewhere.test"   # in the realm, not in the proxy's keytab
LINE_TIMEOUT = 30.0


class Acceptor:
    """A running `negotiate_tool accept`: one JSON line per token sent."""

    def __init__(self, keytab, env: dict, *options: str) -> None:
        assert TOOL, "AUTH_PROXY_NEGOTIATE_TOOL is not set (ctest sets it)"
        self.proc = subprocess.Popen([TOOL, "accept", "--keytab", str(keytab), *options], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buffer = b""
        self.ready = self._read_line()

    def _read_line(self) -> dict:
        deadline = time.time() + LINE_TIMEOUT
        while b"\n" not in self.buffer:
            left = deadline - time.time()
            assert left > 0, f"negotiate_tool said nothing within {LINE_TIMEOUT} s"
            readable, _, _ = select.select([self.proc.stdout], [], [], left)
            if readable:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"negotiate_tool ended: {self.proc.stderr.read().decode(errors='replace')}"
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def accept(self, header: str) -> dict:
        self.proc.stdin.write(header.encode() + b"\n")
        self.proc.stdin.flush()
        return self._read_line()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=LINE_TIMEOUT)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def acceptors():
    """Factory: acceptors(keytab, env, *options) starts a negotiate_tool; all are closed after the test."""
    started = []

    def start(keytab, env, *options) -> Acceptor:
        acceptor = Acceptor(keytab, env, *options)
        started.append(acceptor)
        return acceptor
    yield start
    for acceptor in started:
        acceptor.close()


@pytest.fixture
def principals(kdc):
    for user, password in USERS.items():
        kdc.add_user(user, password)
    for service in [*SERVICES, OTHER_SERVICE]:
        kdc.add_service(service)


@pytest.fixture
def keytab(kdc, principals, server_root):
    """The proxy's keytab, readable by root only, as a key should be."""
    path = kdc.keytab(os.path.join(server_root, "http.keytab"), *SERVICES)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def alice(kdc, principals, server_root):
    return kdc.kinit("alice", USERS["alice"], os.path.join(server_root, "alice.ccache"))


@pytest.fixture
def rcache_dir(server_root):
    """A directory for replay caches that the server's User owns, as the module's would be."""
    path = Path(server_root) / "negotiate-rcache"
    path.mkdir()
    account = pwd.getpwnam(run_user())
    os.chown(path, account.pw_uid, account.pw_gid)
    os.chmod(path, 0o700)
    return path


def server_env(kdc) -> dict:
    """The acceptor's environment: the realm's krb5.conf, no ccache, no default keytab."""
    return kdc.env()


def rcache(directory, name: str = "negotiate") -> str:
    return f"file2:{directory}/{name}.rcache2"


def spnego_answer(result: dict) -> bytes:
    return base64.b64decode(result["output"])


# ---------------------------------------------------------------- accepted

def test_a_valid_token_names_the_client_and_its_local_name(kdc, keytab, alice, rcache_dir, acceptors):
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    assert tool.ready["principals"] == [f"{s}@{REALM}" for s in SERVICES]
    assert tool.ready["keytab"].startswith("MEMORY:auth_proxy_")
    result = tool.accept(negotiate_header("127.0.0.1", alice))
    assert (result["status"], result["principal"], result["user"]) == ("accepted", f"alice@{REALM}", "alice")
    # SPNEGO accept-completed (negState 0) for Kerberos, with the AP-REP after it.
    answer = spnego_answer(result)
    assert answer[0] == 0xA1 and b"\xa0\x03\x0a\x01\x00" in answer
    assert b"\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02" in answer


def test_every_service_of_the_keytab_is_served(kdc, keytab, alice, rcache_dir, acceptors):
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    for host in ("localhost", "127.0.0.1"):
        assert tool.accept(negotiate_header(host, alice))["status"] == "accepted", host


def test_with_local_name_off_the_user_is_the_full_principal(kdc, keytab, alice, rcache_dir, acceptors):
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir), "--local-name", "off")
    result = tool.accept(negotiate_header("127.0.0.1", alice))
    assert (result["status"], result["user"]) == ("accepted", f"alice@{REALM}")


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    octets = (n.bit_length() + 7) // 8
    length = bytes([n]) if n < 128 else bytes([0x80 | octets]) + n.to_bytes(octets, "big")
    return bytes([tag]) + length + content


def raw_kerberos_token(kdc, ccache, service: str = "HTTP/127.0.0.1") -> dict:
    """{"token", "endtime"}: a raw Kerberos token from the service ticket in @p ccache (negotiate_tool token)."""
    out = subprocess.run([TOOL, "token", "--ccache", str(ccache), "--service", service],
                         env=kdc.env(ccache), capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_a_windows_shaped_spnego_token_is_answered_with_its_oid(kdc, keytab, alice, rcache_dir, acceptors):
    """Windows lists Microsoft's Kerberos OID (1.2.840.48018.1.2.2) first and expects it back;
    a raw Kerberos token (no SPNEGO), as some clients send, is accepted too."""
    subprocess.run(["kvno", "HTTP/127.0.0.1"], env=kdc.env(alice), check=True, capture_output=True, timeout=60)
    ms_oid = b"\x06\x09\x2a\x86\x48\x82\xf7\x12\x01\x02\x02"
    krb5_oid = b"\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    kerberos = base64.b64decode(raw_kerberos_token(kdc, alice)["token"])
    init = _der(0x30, _der(0xA0, _der(0x30, ms_oid + krb5_oid)) + _der(0xA2, _der(0x04, kerberos)))
    windows = _der(0x60, b"\x06\x06\x2b\x06\x01\x05\x05\x02" + _der(0xA0, init))
    result = tool.accept("Negotiate " + base64.b64encode(windows).decode())
    assert (result["status"], result["user"]) == ("accepted", "alice")
    assert _der(0xA1, ms_oid) in spnego_answer(result)
    raw = tool.accept(raw_kerberos_token(kdc, alice)["token"])
    assert (raw["status"], raw["user"], raw["output"]) == ("accepted", "alice", "")


# ---------------------------------------------------------------- the keys

def test_keys_read_as_root_serve_a_user_who_cannot_read_the_keytab(kdc, keytab, alice, rcache_dir, acceptors):
    user = run_user()
    account = pwd.getpwnam(user)
    # The control: as the User, the keytab cannot be loaded.
    as_user = subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                              "--init-groups", "--", TOOL, "accept", "--keytab", str(keytab)],
                             env=server_env(kdc), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert as_user.returncode == 1
    assert "Permission denied" in json.loads(as_user.stdout)["error"]

    tool = acceptors(keytab, server_env(kdc), "--user", user, "--rcache", rcache(rcache_dir))
    assert tool.ready["uid"] == account.pw_uid
    assert tool.accept(negotiate_header("127.0.0.1", alice))["status"] == "accepted"


def test_keys_survive_a_fork_into_the_user(kdc, keytab, alice, rcache_dir, acceptors):
    tool = acceptors(keytab, server_env(kdc), "--user", run_user(), "--fork", "--rcache", rcache(rcache_dir))
    assert tool.ready["pid"] != tool.proc.pid   # the forked child answers
    assert tool.accept(negotiate_header("localhost", alice))["status"] == "accepted"


@pytest.mark.parametrize("case", ["missing", "empty", "host_only"])
def test_an_unusable_keytab_is_a_clear_error(kdc, principals, server_root, case):
    path = Path(server_root) / f"{case}.keytab"
    if case == "empty":
        path.write_bytes(b"\x05\x02")
    elif case == "host_only":
        kdc.add_service("host/proxy.test")
        kdc.keytab(path, "host/proxy.test")
    out = subprocess.run([TOOL, "accept", "--keytab", str(path)], env=server_env(kdc), capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert str(path) in error
    assert {"missing": "not found", "empty": "holds no key",
            "host_only": "no key of an HTTP/<host> service"}[case] in error


def test_a_replay_cache_the_user_cannot_write_fails_the_start(kdc, keytab, server_root):
    # server_root belongs to root (0755): the User may not create a file in it.
    out = subprocess.run([TOOL, "accept", "--keytab", str(keytab), "--user", run_user(),
                          "--rcache", rcache(server_root)],
                         env=server_env(kdc), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert "replay cache" in error and "Permission denied" in error


# ---------------------------------------------------------------- replays

def test_a_replayed_token_is_refused(kdc, keytab, alice, rcache_dir, acceptors):
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    header = negotiate_header("127.0.0.1", alice)
    assert tool.accept(header)["status"] == "accepted"
    replayed = tool.accept(header)
    assert replayed["status"] == "replay", replayed
    assert replayed["principal"] == "" and replayed["user"] == ""
    assert "replay" in replayed["detail"]


def test_a_replay_is_refused_by_another_process_sharing_the_replay_cache(kdc, keytab, alice, rcache_dir,
                                                                         acceptors):
    user = run_user()
    first = acceptors(keytab, server_env(kdc), "--user", user, "--rcache", rcache(rcache_dir))
    second = acceptors(keytab, server_env(kdc), "--user", user, "--fork", "--rcache", rcache(rcache_dir))
    # The control: a process with a replay cache of its own takes the replayed token.
    apart = acceptors(keytab, server_env(kdc), "--user", user, "--rcache", rcache(rcache_dir, "apart"))
    header = negotiate_header("127.0.0.1", alice)
    assert first.accept(header)["status"] == "accepted"
    assert second.accept(header)["status"] == "replay"
    assert apart.accept(header)["status"] == "accepted"
    assert second.accept(negotiate_header("127.0.0.1", alice))["status"] == "accepted"


def test_threads_of_one_process_share_the_replay_cache(kdc, keytab, alice, rcache_dir):
    """Each thread accepts with a credential of its own (MIT locks a credential for a whole accept);
    the replay cache still lets exactly one of them take a token that all of them get at once."""
    replayed = [negotiate_header("127.0.0.1", alice)] * 12
    distinct = [negotiate_header("127.0.0.1", alice) for _ in range(12)]
    out = subprocess.run([TOOL, "accept", "--keytab", str(keytab), "--rcache", rcache(rcache_dir),
                          "--threads", "4"], input="\n".join(replayed + distinct) + "\n",
                         env=server_env(kdc), capture_output=True, text=True, timeout=120, check=True)
    statuses = [json.loads(line)["status"] for line in out.stdout.splitlines()[1:]]
    assert sorted(statuses[:12]) == ["accepted"] + ["replay"] * 11
    assert statuses[12:] == ["accepted"] * 12


# ---------------------------------------------------------------- other refusals

def test_a_token_for_another_service_is_wrong_service(kdc, keytab, alice, rcache_dir, acceptors):
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    result = tool.accept(negotiate_header("elsewhere.test", alice))
    assert result["status"] == "wrong_service", result
    assert OTHER_SERVICE in result["detail"]


def _flip(token: bytes, position: int) -> bytes:
    return token[:position] + bytes([token[position] ^ 0x55]) + token[position + 1:]


@pytest.mark.parametrize("case", ["not_base64", "zeros", "ntlm", "ntlm_in_spnego", "truncated", "tampered"])
def test_garbled_tokens_are_refused_as_bad_tokens(kdc, keytab, alice, rcache_dir, acceptors, case):
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    real = base64.b64decode(negotiate_header("127.0.0.1", alice).split()[1])
    ntlm = b"NTLMSSP\x00\x01\x00\x00\x00\x07\x82\x08\xa2" + bytes(16)
    # SPNEGO offering NTLM (1.3.6.1.4.1.311.2.2.10) only, as a client without a ticket may.
    ntlm_oid = b"\x06\x0a\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a"
    mech_types = b"\xa0\x0e\x30\x0c" + ntlm_oid
    mech_token = b"\xa2" + bytes([len(ntlm) + 2]) + b"\x04" + bytes([len(ntlm)]) + ntlm
    init = b"\x30" + bytes([len(mech_types + mech_token)]) + mech_types + mech_token
    body = b"\x06\x06\x2b\x06\x01\x05\x05\x02" + b"\xa0" + bytes([len(init)]) + init
    spnego_ntlm = b"\x60" + bytes([len(body)]) + body
    tokens = {
        "zeros": bytes(30),
        "ntlm": ntlm,
        "ntlm_in_spnego": spnego_ntlm,
        "truncated": real[:len(real) // 2],
        "tampered": _flip(real, len(real) - 20),   # inside the encrypted authenticator
    }
    if case == "not_base64":
        result = tool.accept("Negotiate !!!!")
        assert result["status"] == "bad_header"
        return
    result = tool.accept("Negotiate " + base64.b64encode(tokens[case]).decode())
    assert result["status"] == "bad_token", result
    assert result["principal"] == ""
    if case.startswith("ntlm"):
        assert "NTLM" in result["detail"]


def test_an_expired_ticket_is_refused_as_expired(kdc, keytab, principals, server_root, rcache_dir, acceptors):
    """A token made from a service ticket past its end (and the clock skew). No stock client sends one
    (MIT's library refuses an expired ticket locally), so negotiate_tool makes it from the ccache."""
    ccache = kdc.kinit("bob", USERS["bob"], os.path.join(server_root, "bob.ccache"), lifetime="4s")
    subprocess.run(["kvno", "HTTP/127.0.0.1"], env=kdc.env(ccache), check=True, capture_output=True, timeout=60)

    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    fresh = raw_kerberos_token(kdc, ccache)
    assert tool.accept(fresh["token"])["status"] == "accepted"   # the control: while the ticket is valid
    # MIT's rule, in whole seconds: expired once now > end time + clock skew.
    deadline = time.time() + 60
    while int(time.time()) <= fresh["endtime"] + kdc.clockskew:
        assert time.time() < deadline, "the ticket did not expire"
        time.sleep(0.2)
    stale = raw_kerberos_token(kdc, ccache)
    assert stale["endtime"] == fresh["endtime"]   # the same ticket, now expired
    result = tool.accept(stale["token"])
    assert result["status"] == "expired", result
    assert "expired" in result["detail"]


# ---------------------------------------------------------------- local names

def krb5_conf_with(kdc, server_root, default_realm: str, realm_section: str = "") -> dict:
    """The realm's krb5.conf with another default realm (PROXY.TEST becomes foreign) and @p realm_section."""
    text = kdc.krb5_conf.read_text().replace(f"default_realm = {REALM}", f"default_realm = {default_realm}")
    text = text.replace("[realms]\n", f"[realms]\n{realm_section}")
    path = Path(server_root) / f"krb5-{default_realm}.conf"
    path.write_text(text)
    os.chmod(path, 0o644)
    return {**server_env(kdc), "KRB5_CONFIG": str(path)}


def test_a_foreign_realm_principal_maps_to_no_local_name(kdc, keytab, alice, rcache_dir, server_root, acceptors):
    env = krb5_conf_with(kdc, server_root, "OTHER.TEST")
    tool = acceptors(keytab, env, "--rcache", rcache(rcache_dir))
    result = tool.accept(negotiate_header("127.0.0.1", alice))
    assert (result["status"], result["principal"], result["user"]) == ("foreign_realm", f"alice@{REALM}", "")
    assert "OTHER.TEST" in result["detail"]
    # With mapping off, the full principal is the user and the realm does not matter.
    off = acceptors(keytab, env, "--rcache", rcache(rcache_dir), "--local-name", "off")
    assert off.accept(negotiate_header("127.0.0.1", alice))["user"] == f"alice@{REALM}"


def test_auth_to_local_can_map_a_foreign_realm(kdc, keytab, alice, rcache_dir, server_root, acceptors):
    rule = "    OTHER.TEST = {\n        auth_to_local = RULE:[1:$1@$0](.*@PROXY\\.TEST)s/@.*//\n    }\n"
    tool = acceptors(keytab, krb5_conf_with(kdc, server_root, "OTHER.TEST", rule), "--rcache", rcache(rcache_dir))
    result = tool.accept(negotiate_header("127.0.0.1", alice))
    assert (result["status"], result["user"]) == ("accepted", "alice")


def test_a_two_part_principal_of_our_realm_maps_to_no_local_name(kdc, keytab, principals, server_root, rcache_dir,
                                                                 acceptors):
    kdc.add_user("alice/admin", "admin-secret")
    ccache = kdc.kinit("alice/admin", "admin-secret", os.path.join(server_root, "admin.ccache"))
    tool = acceptors(keytab, server_env(kdc), "--rcache", rcache(rcache_dir))
    result = tool.accept(negotiate_header("127.0.0.1", ccache))
    assert (result["status"], result["principal"], result["user"]) == ("no_local_name", f"alice/admin@{REALM}", "")
