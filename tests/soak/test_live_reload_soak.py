"""Soak: 64 keep-alive clients for a minute while another process edits the user file.

Under each MPM, 64 clients send requests back to back, each on its own
kept-alive connection, while a separate process (user_file_editor.py) edits
the AuthUserFile with the real ``htpasswd``: it adds users, changes passwords,
deletes users, replaces the whole file by ``mv`` of a prepared one, and once
removes the file for 1.5 s. The clients follow the edits and send, on purpose,
current credentials, replaced passwords, deleted users, wrong passwords and
unknown users.

Every response is then judged against the file's history (file_history.py):
a user deleted before the request was sent is never admitted, a password
replaced before it never works, credentials valid all the while it was in
flight are admitted, and 500 comes only while the file is missing: a change
counts from the moment it is on disk, as with mod_authn_file. The make_httpd
fixture fails the test on any crash line in the error log.

AUTH_PROXY_SOAK_SECONDS shortens the run (default 60) while working on it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime

import pytest

from file_history import FileHistory, Rules
from harness import Httpd
from load import Load, Record, latency_summary, status_counts, wait_until
from soak_config import CLIENTS, answering_pids, soak_body
from user_file_editor import Editor

MPMS = ["event", "worker", "prefork"]
SECONDS = float(os.environ.get("AUTH_PROXY_SOAK_SECONDS", "60"))
MISSING_AT = 0.55 * SECONDS      # the deliberate missing-file window, seconds into the run
MISSING_FOR = 1.5
EVIDENCE = 12                    # violations shown in full


class Credentials:
    """What the clients send, following the editor's edits as they are reported:
    55% currently valid, 30% once valid (replaced password or deleted user),
    10% a current user with a wrong password, 5% a user who never existed."""

    def __init__(self) -> None:
        self.current: tuple = ()
        self.stale: tuple = ()
        self.ever: set = set()

    def follow(self, edit: dict) -> None:
        if edit["state"] is None:
            return      # keep sending what was valid: while the file is missing the answer is 500
        current = set(edit["state"].items())
        self.ever |= current
        self.current, self.stale = tuple(sorted(current)), tuple(sorted(self.ever - current))

    def choose(self, rng):
        current, stale, r = self.current, self.stale, rng.random()
        if r < 0.55 and current:
            return rng.choice(current)
        if r < 0.85 and stale:
            return rng.choice(stale)
        if r < 0.95 and current:
            user = rng.choice(current)[0]
            return user, f"wrong-{user}"
        return f"stranger{rng.randrange(5)}", "stranger-pw"


def error_log_near(h, pid: str, seq: int, user: str, wall_begin: float, wall_end: float,
                   limit: int = 12) -> list[str]:
    """What child ``pid`` logged between the two wall-clock times about its user
    files (APX02/APX03), this user, or this request."""
    about = re.compile(rf"APX0[23]|user {re.escape(user)}\b|/p/soak/{seq}\b")
    out = []
    for line in h.log().splitlines():
        if f"[pid {pid}:" not in line or not about.search(line):
            continue
        m = re.match(r"\[(\w{3} \w{3} \d{2} [\d:.]+ \d{4})\]", line)
        if m and wall_begin <= datetime.strptime(m.group(1), "%a %b %d %H:%M:%S.%f %Y").timestamp() <= wall_end:
            out.append("      " + line[:300])
    return out[-limit:]


def examples(violations: list, per_kind: int = 4) -> list:
    """The first few violations of each kind."""
    seen: dict = {}
    out = []
    for r, j in violations:
        kind = j.violation.split(":")[0]
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= per_kind:
            out.append((r, j))
    return out


@dataclass
class Soak:
    h: Httpd
    history: FileHistory
    records: list[Record]
    t0: float                 # time.monotonic() when the editor started editing
    wall0: float              # time.time() then, to find error log lines
    connections: int
    retries: int

    def wall(self, t: float) -> float:
        return t - self.t0 + self.wall0


def soak(make_httpd, backend, server_root: str, mpm: str) -> Soak:
    """Clients on a warm server while the editor runs its schedule; every request recorded."""
    users = f"{server_root}/users"
    history, credentials = FileHistory(), Credentials()

    def on_edit(edit: dict) -> None:
        history.add(edit)
        credentials.follow(edit)

    editor = Editor(users, SECONDS, MISSING_AT, MISSING_FOR, seed=MPMS.index(mpm) + 1, on_edit=on_edit)
    load = None
    try:
        h = make_httpd(soak_body(backend, mpm, users), mpm=mpm)
        load = Load(h.port, CLIENTS, credentials.choose, seed=MPMS.index(mpm)).start()
        wait_until(load.all_clients_answered, 60, f"a response for each of the {CLIENTS} clients")
        t0, wall0 = time.monotonic(), time.time()
        editor.go()
        editor.wait(SECONDS + 60)
        records = load.stop()
    finally:
        if load is not None:
            load.stopping.set()
        editor.kill()
    return Soak(h, history, records, t0, wall0, load.connections, load.retries)


def print_summary(mpm: str, run: Soak, judged: list, violations: list) -> None:
    records, history, t0 = run.records, run.history, run.t0
    ran = records[-1].received - records[0].sent
    ops: dict = {}
    for e in history.edits[1:]:
        ops[e["op"]] = ops.get(e["op"], 0) + 1
    (missing_from, missing_to), = history.missing_windows()
    must_admit = sum(j.must_admit for _, j in judged)
    must_refuse = sum(j.must_refuse for _, j in judged)
    kinds: dict = {}
    for _, j in violations:
        kinds[j.violation.split(":")[0]] = kinds.get(j.violation.split(":")[0], 0) + 1
    print(f"\n[{mpm}] {ran:.1f} s, {CLIENTS} clients: {len(records)} requests ({len(records) / ran:.0f}/s) "
          f"on {run.connections} connections, {run.retries} retried once; statuses {status_counts(records)}; "
          f"{latency_summary(records)}")
    print(f"[{mpm}] {len(history.edits) - 1} edits {ops}; file missing {missing_to - missing_from:.2f} s "
          f"from +{missing_from - t0:.2f} s")
    print(f"[{mpm}] checked: {must_admit} had to be admitted, {must_refuse} had to be refused, "
          f"{len(records) - must_admit - must_refuse} sent or answered during a change; violations: {len(violations)} {kinds}")


def print_evidence(run: Soak, rules: Rules, violations: list) -> None:
    """For the first violations of each kind: the request, the user's entry in
    the file around it, and what the answering child logged."""
    pids = answering_pids(run.h)
    for r, j in examples(violations)[:EVIDENCE]:
        pid = pids.get(r.seq, "?")
        sent_at = datetime.fromtimestamp(run.wall(r.sent)).strftime("%H:%M:%S.%f")
        print(f"  VIOLATION #{r.seq}: {j.violation}\n"
              f"    {r.user}:{r.password} sent +{r.sent - run.t0:.3f} s ({sent_at}), answered "
              f"+{r.received - run.t0:.3f} s with {r.status or r.outcome} by pid {pid}")
        print("\n".join(rules.timeline(r.user, r.sent - 3, r.received + 0.5, run.t0)))
        if pid != "?":
            print("\n".join(error_log_near(run.h, pid, r.seq, r.user,
                                           run.wall(r.sent) - 3, run.wall(r.received) + 0.2)))


@pytest.mark.parametrize("mpm", MPMS)
def test_every_response_matches_the_user_file_as_it_was_edited(make_httpd, backend, server_root, mpm):
    run = soak(make_httpd, backend, server_root, mpm)
    rules = Rules(run.history)
    judged = [(r, rules.judge(r)) for r in run.records]
    violations = [(r, j) for r, j in judged if j.violation]
    print_summary(mpm, run, judged, violations)
    print_evidence(run, rules, violations)

    assert len(run.history.edits) > SECONDS / 3, "the editor hardly edited: the soak proved little"
    assert sum(j.must_admit for _, j in judged) > 1000 and sum(j.must_refuse for _, j in judged) > 1000, \
        "too few requests had a definite expected answer"
    assert any(r.status == 500 for r in run.records), "no request saw the missing file"
    assert not violations, f"{len(violations)} responses broke the rules (see above)"
