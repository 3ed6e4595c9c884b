"""What a user file held when, and the rules every soak response is checked against.

Each edit is known by the time just before its first change to the file
(``start``) and just after its last (``end``). So the version an edit
writes may have been on disk from its ``start`` until the ``end`` of the
next edit, and nothing else is ever on disk, except that a file htpasswd
rewrites in place is empty or half-written for a moment between ``start``
and ``end``: such a *transient* version admits nobody.

A change counts from the moment it is on disk, as with mod_authn_file,
which reads the file on every request: a request sent at ``sent`` and
answered at ``received`` may be judged by any version on disk at some time
in ``[sent, received]``, and by no other. (``GRACE`` widens that window
back in time, should a module ever need one: it is 0.)

- 200 needs one of those versions to hold this user with this password.
  Otherwise a user already deleted (or a password already replaced) when
  the request was sent was admitted.
- 407 or 429 (the guessing throttle: "not admitted") needs one of those
  versions *not* to hold them. Otherwise credentials valid all the while
  the request was in flight, with no rewrite or missing file in between,
  were refused.
- 500 needs the file to have been missing at some time in that window.
- Any other status, or no complete response (after the client's one retry
  on a reused connection), is always a violation.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

GRACE = 0.0          # seconds a change may take to show (none: as with mod_authn_file)
REFUSED = (407, 429)


@dataclass
class Version:
    start: float                    # earliest it can have been on disk
    end: float                      # latest it can have been on disk
    state: dict | None              # user -> password; None: the file is missing
    op: str                         # the edit that wrote it
    user: str | None = None         # the user that edit named, if any

    def admits(self, user: str, password: str) -> bool:
        return self.state is not None and self.state.get(user) == password


@dataclass
class Judgement:
    violation: str | None           # None: the response is allowed
    must_admit: bool                # every version in the window holds the credentials
    must_refuse: bool               # none does


@dataclass
class FileHistory:
    edits: list[dict] = field(default_factory=list)

    def add(self, edit: dict) -> None:
        self.edits.append(edit)

    def missing_windows(self) -> list[tuple[float, float]]:
        """(start of rm, end of the mv that brought the file back) of each missing stretch."""
        out, began = [], None
        for e in self.edits:
            if e["state"] is None and began is None:
                began = e["start"]
            elif e["state"] is not None and began is not None:
                out.append((began, e["end"]))
                began = None
        if began is not None:
            out.append((began, math.inf))
        return out

    def versions(self) -> list[Version]:
        """Every version that can have been on disk, transient ones included, by start."""
        out = []
        for i, e in enumerate(self.edits):
            until = self.edits[i + 1]["end"] if i + 1 < len(self.edits) else math.inf
            if e["in_place"]:
                out.append(Version(e["start"], e["end"], {}, f"{e['op']} (mid-write)", e["user"]))
            out.append(Version(e["start"], until, e["state"], e["op"], e["user"]))
        return out


class Rules:
    """Judges records against a history (see the module docstring)."""

    def __init__(self, history: FileHistory) -> None:
        self.history = history
        self.versions = history.versions()
        self.starts = [v.start for v in self.versions]
        self.longest = max((v.end - v.start for v in self.versions if v.end != math.inf), default=0.0)
        self.passwords: dict[str, set] = {}     # every password a user ever had
        for e in history.edits:
            for user, password in (e["state"] or {}).items():
                self.passwords.setdefault(user, set()).add(password)

    def on_disk(self, begin: float, end: float) -> list[Version]:
        """Versions that can have been on disk at some time in [begin, end]."""
        # Starts are sorted; a version reaching into the window started at most `longest`
        # before it, except the last one, which lasts for ever.
        lo = min(bisect.bisect_left(self.starts, begin - self.longest), len(self.versions) - 1)
        hi = bisect.bisect_right(self.starts, end)
        return [v for v in self.versions[lo:hi] if v.end >= begin]

    def judge(self, r) -> Judgement:
        window = self.on_disk(r.sent - GRACE, r.received)
        held = [v.admits(r.user, r.password) for v in window]
        must_admit, must_refuse = all(held), not any(held)
        missing = any(v.state is None for v in window)
        violation = None
        if r.outcome != "response":
            violation = f"no response ({r.outcome}): {r.error}"
        elif r.status == 200 and must_refuse:
            if all(v.state is None or r.user not in v.state for v in window):
                violation = "admitted a user absent from the file"
            elif r.password in self.passwords.get(r.user, ()):
                violation = "admitted a password already replaced"
            else:
                violation = "admitted a wrong password"
        elif r.status in REFUSED and must_admit:
            violation = f"refused ({r.status}) credentials valid all the while"
        elif r.status == 500 and not missing:
            violation = "500 while the file was there"
        elif r.status not in (200, 500) + REFUSED:
            violation = f"unexpected status {r.status}"
        return Judgement(violation, must_admit, must_refuse)

    def timeline(self, user: str, begin: float, end: float, t0: float) -> list[str]:
        """The user's entry in the file around [begin, end], for evidence: one line
        per stretch with the same entry, times in seconds after t0."""
        out, rewrites = [], []
        for v in self.on_disk(begin, end):
            if v.op.endswith("(mid-write)"):
                rewrites.append(f"{v.start - t0:+.3f}")
                continue
            entry = ("FILE MISSING" if v.state is None else
                     f"password {v.state[user]!r}" if user in v.state else "absent")
            edit = v.op + (f" {v.user}" if v.user else "")
            if out and out[-1][2] == entry:
                out[-1][1] = v.end
            else:
                out.append([v.start, v.end, entry, edit])
        lines = [f"    {entry:<40} on disk from {a - t0:+.3f} (after '{edit}') until {b - t0:+.3f} s"
                 for a, b, entry, edit in out]
        if rewrites:
            lines.append(f"    rewritten in place (nobody admitted mid-write) at {', '.join(rewrites)} s")
        return lines
