"""The other process of the soak: edits an htpasswd file with the real tools, on a schedule.

Run by ``Editor`` (below) as ``python3 user_file_editor.py FILE --seed N --seconds S
--missing-at A --missing-for M``. It speaks JSON lines:

1. creates FILE with ``INITIAL_USERS`` users and prints that edit;
2. waits for a line on stdin (the clients are running);
3. for S seconds adds users, changes passwords and deletes users with
   ``htpasswd``, replaces the whole file by ``mv`` of a prepared one, and once,
   A seconds in, removes the file for M seconds (``rm``, then ``mv`` of a
   prepared file); it prints each edit once it is complete on disk;
4. prints ``{"op": "done"}``.

An edit is ``{"op", "user", "start", "end", "state", "in_place"}``. ``start`` and
``end`` are ``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every
process) just before the first and just after the last change to the file.
``state`` maps each user to its password after the edit (null: the file is
missing). ``in_place``: htpasswd rewrote the file in place (it truncates the
file, then writes it), so between start and end a reader may have seen it
empty or half-written.

The pauses between edits are the schedule, not waits for anything: short
bursts (several edits inside one second) alternate with quiet stretches
longer than a second, in which every current user must be admitted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from harness import htpasswd, htpasswd_delete  # noqa: E402

USERS = [f"user{n:02d}" for n in range(40)]
INITIAL_USERS = 20
# Cheap hashes, so verifying (failures are never cached) does not dominate.
FORMATS = [("-B", "-C", "4"), ("-m",), ("-s",), ("-5", "-r", "1000")]
QUIET_SHARE = 0.3               # share of pauses that are quiet stretches
BURST_PAUSE = (0.05, 0.4)       # seconds
QUIET_PAUSE = (1.3, 2.5)        # seconds: time for the new index to come in (between edits, requests use it)


class Schedule:
    """The edits, in the order a seeded random generator picks them."""

    def __init__(self, path: str, seed: int) -> None:
        self.path = path
        self.next_path = path + ".next"      # prepared files: same directory, so mv is a rename
        self.rng = random.Random(seed)
        self.state: dict[str, str] = {}
        self.counter = 0

    # -- helpers
    def _password(self, user: str) -> str:
        self.counter += 1
        return f"{user}-pw{self.counter}-{self.rng.randrange(10**6)}"

    def _format(self) -> tuple:
        return self.rng.choice(FORMATS)

    def _emit(self, op: str, user: str | None, start: float, end: float, in_place: bool,
              missing: bool = False) -> None:
        doc = {"op": op, "user": user, "start": start, "end": end, "in_place": in_place,
               "state": None if missing else dict(self.state)}
        print(json.dumps(doc), flush=True)

    def _prepare(self, state: dict[str, str]) -> None:
        """Writes ``state`` to the prepared file with htpasswd, one user at a time."""
        if os.path.exists(self.next_path):
            os.unlink(self.next_path)
        for user, password in state.items():
            htpasswd(self.next_path, user, password, *self._format())
        if not state:
            Path(self.next_path).touch(mode=0o644)

    # -- edits
    def create(self) -> None:
        start = time.monotonic()
        for user in self.rng.sample(USERS, INITIAL_USERS):
            self.state[user] = self._password(user)
            htpasswd(self.path, user, self.state[user], *self._format())
        self._emit("create", None, start, time.monotonic(), in_place=True)

    def add(self) -> None:
        user = self.rng.choice([u for u in USERS if u not in self.state])
        password = self._password(user)
        start = time.monotonic()
        htpasswd(self.path, user, password, *self._format())
        self.state[user] = password
        self._emit("add", user, start, time.monotonic(), in_place=True)

    def change(self) -> None:
        user = self.rng.choice(sorted(self.state))
        password = self._password(user)
        start = time.monotonic()
        htpasswd(self.path, user, password, *self._format())
        self.state[user] = password
        self._emit("change", user, start, time.monotonic(), in_place=True)

    def delete(self) -> None:
        user = self.rng.choice(sorted(self.state))
        start = time.monotonic()
        htpasswd_delete(self.path, user)
        del self.state[user]
        self._emit("delete", user, start, time.monotonic(), in_place=True)

    def _replacement(self) -> dict[str, str]:
        """Keeps about 60% of the users (half of them with a new password) and adds up to 4."""
        state = {}
        for user, password in sorted(self.state.items()):
            if self.rng.random() < 0.6:
                state[user] = password if self.rng.random() < 0.5 else self._password(user)
        absent = [u for u in USERS if u not in state]
        for user in self.rng.sample(absent, self.rng.randint(1, 4)):
            state[user] = self._password(user)
        return state

    def replace(self) -> None:
        state = self._replacement()
        self._prepare(state)
        start = time.monotonic()
        subprocess.run(["mv", self.next_path, self.path], check=True)
        self.state = state
        self._emit("replace", None, start, time.monotonic(), in_place=False)

    def remove_for(self, seconds: float) -> None:
        """The deliberate missing-file window: rm, then mv a prepared file into place."""
        self._prepare(self.state)
        start = time.monotonic()
        subprocess.run(["rm", self.path], check=True)
        self._emit("remove", None, start, time.monotonic(), in_place=False, missing=True)
        time.sleep(seconds)
        start = time.monotonic()
        subprocess.run(["mv", self.next_path, self.path], check=True)
        self._emit("restore", None, start, time.monotonic(), in_place=False)

    def step(self) -> None:
        ops = [(self.change, 35), (self.add, 25 if len(self.state) < len(USERS) else 0),
               (self.delete, 20 if len(self.state) > 5 else 0), (self.replace, 15)]
        op = self.rng.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
        op()

    def pause(self) -> float:
        low, high = QUIET_PAUSE if self.rng.random() < QUIET_SHARE else BURST_PAUSE
        return self.rng.uniform(low, high)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--missing-at", type=float, default=33)
    parser.add_argument("--missing-for", type=float, default=1.5)
    args = parser.parse_args()

    schedule = Schedule(args.file, args.seed)
    schedule.create()
    sys.stdin.readline()
    began = time.monotonic()
    removed = False
    while time.monotonic() - began < args.seconds:
        if not removed and time.monotonic() - began >= args.missing_at:
            schedule.remove_for(args.missing_for)
            removed = True
        else:
            schedule.step()
        time.sleep(schedule.pause())
    print(json.dumps({"op": "done"}), flush=True)


# ---------------------------------------------------------------- the test's side

class Editor:
    """Runs this file as a separate process and collects its edits as they complete.

    ``on_edit(edit)`` is called (from a reader thread) for each edit, in order,
    so the clients can follow the current users.
    """

    def __init__(self, path: str, seconds: float, missing_at: float, missing_for: float,
                 seed: int, on_edit) -> None:
        self.edits: list[dict] = []
        self.done = threading.Event()
        self.on_edit = on_edit
        self.proc = subprocess.Popen(
            [sys.executable, __file__, path, "--seed", str(seed), "--seconds", str(seconds),
             "--missing-at", str(missing_at), "--missing-for", str(missing_for)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._take(self.proc.stdout.readline())     # the initial file
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _take(self, line: str) -> None:
        if not line:
            raise RuntimeError(f"the editor exited early ({self.proc.wait()})")
        edit = json.loads(line)
        if edit["op"] == "done":
            self.done.set()
            return
        self.edits.append(edit)
        self.on_edit(edit)

    def _read(self) -> None:
        try:
            while not self.done.is_set():
                self._take(self.proc.stdout.readline())
        finally:
            self.done.set()

    def go(self) -> None:
        self.reader.start()
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float) -> None:
        assert self.done.wait(timeout), f"the editor did not finish within {timeout} s"
        assert self.proc.wait(timeout=10) == 0, "the editor failed"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    main()
