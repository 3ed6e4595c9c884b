"""A flood of slow wrong guesses from many addresses, against a cap of one hash at a time.

Every guess comes from an address of its own in 127.0.0.0/8 (all of it is
local on Linux), so no throttle limit is near. With AuthProxyVerifyLimit 1
the server runs one bcrypt at a time whatever the flood, read from the
metrics while it runs; a user whose credentials are cached gets 200
throughout (the hashes run on threads at nice 19); guesses that find the
slot busy past AuthProxyVerifyWait get
503 with Retry-After, and are not failed logins: with a throttle that locks
an address out after one failure, an address whose guess was shed is still
let in, and one whose guess was checked is not.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import proxied_location
from test_metrics import STATUS_PAGES, counters
from test_shared_index import server_pids
from test_throttle_sources import Server

MPMS = ["event", "prefork"]

# Slow enough that concurrent guesses overlap, as a real flood's do.
SLOW_BCRYPT = ("-B", "-C", "11")

FLOOD = 48
CLIENT_THREADS = 12


@pytest.fixture
def users(make_users):
    return make_users({"alice": "alice-pw", "bob": "bob-pw"}, flags=SLOW_BCRYPT)


def start(make_httpd, users, backend, mpm: str) -> Server:
    body = (f"{STATUS_PAGES}"
            "AuthProxyVerifyLimit 1\n"
            "AuthProxyVerifyWait 0.2\n"
            "AuthProxyThrottleFailures 1\n"
            + proxied_location("/p", backend.url, users, "Proxy"))
    h = make_httpd(body, mpm=mpm, extra_modules=["status"])
    return Server(h)


class Sampler:
    """Reads the counters over and over in a thread of its own until stopped."""

    def __init__(self, h) -> None:
        self.h = h
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(counters(self.h))
            self.stop.wait(0.02)  # a pace, not a wait for anything

    def __enter__(self) -> "Sampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


class CachedUser:
    """alice, cached, asking again and again from 127.0.0.1 until stopped."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.stop.is_set():
            self.statuses.append(self.srv.status("127.0.0.1", "alice", "alice-pw"))

    def __enter__(self) -> "CachedUser":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def niceness(h) -> tuple[set[int], set[int]]:
    """The nice values of the server processes' main threads, and of their other threads."""
    _, children = server_pids(h)
    main, others = set(), set()
    for pid in children:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue        # the thread ended meanwhile
            (main if task.name == str(pid) else others).add(int(fields[16]))
    return main, others


@pytest.mark.parametrize("mpm", MPMS)
def test_a_guess_flood_runs_one_hash_at_a_time_sheds_the_rest_uncounted_and_never_slows_the_cache(
        make_httpd, backend, users, mpm):
    srv = start(make_httpd, users, backend, mpm)
    assert srv.status("127.0.0.1", "alice", "alice-pw") == 200  # alice is cached from here on
    before = counters(srv.h)
    assert before["AuthProxyVerifySlots"] == 1

    sources = [f"127.20.{i // 200}.{i % 200 + 1}" for i in range(FLOOD)]
    headers = {}

    def guess(i: int) -> int:
        code, h = srv.status(sources[i], "bob", f"guess-{i}", want_headers=True)
        headers[i] = h
        return code

    with Sampler(srv.h) as sampler, CachedUser(srv) as alice:
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            statuses = list(pool.map(guess, range(FLOOD)))

    # One hash at a time, whenever the metrics were read.
    assert sampler.samples, "the counters were never read during the flood"
    assert max(s["AuthProxyVerifySlotsInUse"] for s in sampler.samples) <= 1
    assert max(s["AuthProxyVerifySlotsPeak"] for s in sampler.samples) <= 1
    # The cached user was never held up behind the guesses.
    assert alice.statuses and set(alice.statuses) == {200}

    checked = [i for i, code in enumerate(statuses) if code == 407]
    shed = [i for i, code in enumerate(statuses) if code == 503]
    assert len(checked) + len(shed) == FLOOD, statuses
    assert shed, "no guess was shed: the flood never found the slot busy"
    assert checked, "no guess was checked"
    for i in shed:
        assert int(headers[i]["retry-after"]) == 1  # 0.2 s, rounded up
        assert "proxy-authenticate" not in headers[i]

    after = counters(srv.h)
    assert after["AuthProxyVerifyShed"] - before["AuthProxyVerifyShed"] == len(shed)
    assert after["AuthProxyFailuresWrongPassword"] - before["AuthProxyFailuresWrongPassword"] == len(checked)
    assert after["AuthProxyVerifySlotsPeak"] <= 1
    assert after["AuthProxyVerifySlotsInUse"] == 0
    assert after["AuthProxyVerifyWaiting"] == 0
    assert after["AuthProxyVerifyWaits"] >= len(shed)
    assert "APX01050" in srv.h.log()

    # The hashes ran on threads at nice 19, in the server processes that answered them.
    main, others = niceness(srv.h)
    assert 19 in others, f"no server process has a thread at nice 19: {others}"
    assert 19 not in main, "a server process's own thread was left at nice 19"

    # One failure locks an address out: a checked guess did, a shed one did not.
    for i in shed:
        assert srv.status(sources[i], "alice", "alice-pw") == 200, f"shed guess from {sources[i]} was counted"
    for i in checked:
        assert srv.status(sources[i], "alice", "alice-pw") == 429, f"checked guess from {sources[i]} was not counted"
