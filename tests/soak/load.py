"""Many keep-alive clients at once, each request recorded with its timing and outcome.

A ``Load`` runs one thread per client; each thread owns one
``http.client.HTTPConnection`` that it keeps alive across requests and
reopens when the server closes it (``Connection: close``, MaxKeepAliveRequests,
a graceful restart). Threads spend their time blocked in the socket, so 64 of
them really hold 64 connections with a request in flight.

How a request ends is decided here, once, for every soak test:

- A request sent on a *reused* connection that ends before any byte of a
  response arrives (EOF, reset, broken pipe) met a keep-alive connection the
  server closed as idle while the request crossed it. The client retries it
  once on a fresh connection, as browsers do for idempotent requests; the
  outcome is that of the retry.
- Otherwise the outcome is the response, or how it failed: ``refused`` (no
  connection), ``closed`` (no byte of a response on a fresh connection),
  ``cut-off`` (after the status line), ``timeout``, ``error``. Whether that
  is a failure is the test's call: it knows whether the server was meant to
  be up.
"""

from __future__ import annotations

import http.client
import itertools
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from harness import basic

# The server read nothing of the request: safe to retry a GET on a fresh connection.
NOT_ANSWERED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                ConnectionAbortedError)


@dataclass(slots=True)
class Record:
    seq: int              # X-Soak-Seq header value: joins the record to httpd's soak_log
    client: int
    sent: float           # time.monotonic() when the first attempt started
    received: float       # time.monotonic() when the outcome was known
    last_sent: float      # when the attempt that produced the outcome started
    user: str | None
    password: str | None
    status: int           # 0 if there was no response
    outcome: str          # "response", or how it failed (see KeepAliveClient.get)
    error: str = ""       # exception name and text when outcome != "response"
    retried: bool = False
    generation: str = ""  # X-Soak-Generation response header, if any


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Polls ``condition`` until it holds; returns the seconds it took.
    Raises AssertionError naming ``what`` when ``timeout`` passes first."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start


class KeepAliveClient:
    """One client connection, kept alive and reopened on demand."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.connections = 0    # connections opened
        self.retries = 0

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """The connection to send on, and whether it is a reused one."""
        if self.conn is not None and self.conn.sock is not None:
            return self.conn, True
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.conn.connect()
        self.connections += 1
        return self.conn, False

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def get(self, path: str, headers: dict) -> tuple[float, int, str, str, bool, str]:
        """One GET: (last attempt's send time, status, outcome, error, retried, generation).

        outcome: "response"; "refused" (no connection: refused, or reset while
        connecting); "closed" (no byte of a
        response: EOF, reset); "timeout"; "cut-off" (the response broke off
        after its status line, ``status`` says which); "error" (anything else).
        """
        retried = False
        while True:
            sent = time.monotonic()
            try:
                conn, reused = self._connection()
            except (ConnectionRefusedError, ConnectionResetError) as e:
                # Reset: the listening socket closed with this connection still in its queue.
                return self._failed(sent, 0, "refused", e, retried)
            except TimeoutError as e:
                return self._failed(sent, 0, "timeout", e, retried)
            except OSError as e:
                return self._failed(sent, 0, "error", e, retried)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
            except NOT_ANSWERED as e:
                if reused and not retried:
                    self._drop()
                    retried = True
                    self.retries += 1
                    continue
                return self._failed(sent, 0, "closed", e, retried)
            except TimeoutError as e:
                return self._failed(sent, 0, "timeout", e, retried)
            except (OSError, http.client.HTTPException) as e:
                return self._failed(sent, 0, "error", e, retried)
            try:
                resp.read()
            except (OSError, http.client.HTTPException) as e:
                return self._failed(sent, resp.status, "cut-off", e, retried)
            return sent, resp.status, "response", "", retried, resp.getheader("X-Soak-Generation") or ""

    def _failed(self, sent: float, status: int, outcome: str, e: Exception, retried: bool):
        self._drop()
        return sent, status, outcome, f"{type(e).__name__}: {e}", retried, ""

    def close(self) -> None:
        self._drop()


# A client's next credentials: (user, password), or None for a request without any.
Chooser = Callable[[random.Random], "tuple[str, str] | None"]


class Load:
    """``clients`` threads sending GET ``path`` back to back until stopped.

    ``choose`` picks each request's credentials. After ``turn_away()`` a
    client whose request gets no response (refused, closed) stops: the server
    is going away and it must not count as a failure of a running server.
    """

    def __init__(self, port: int, clients: int, choose: Chooser, path: str = "/p/soak",
                 timeout: float = 30.0, seed: int = 0) -> None:
        self.port = port
        self.path = path
        self.choose = choose
        self.timeout = timeout
        self.seq = itertools.count()
        self.records: list[list[Record]] = [[] for _ in range(clients)]
        self.clients = [KeepAliveClient(port, timeout) for _ in range(clients)]
        self.stopping = threading.Event()    # stop after the current request
        self.turned_away = threading.Event() # the server is going away
        self.finished: list[bool] = [False] * clients
        self.seed = seed
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True, name=f"client-{i}")
                        for i in range(clients)]

    def start(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def _run(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        client, out = self.clients[i], self.records[i]
        try:
            while not self.stopping.is_set():
                creds = self.choose(rng)
                seq = next(self.seq)
                headers = {"X-Soak-Seq": str(seq)}
                if creds is not None:
                    headers["Proxy-Authorization"] = basic(*creds)
                began = time.monotonic()
                last_sent, status, outcome, error, retried, gen = client.get(f"{self.path}/{seq}", headers)
                out.append(Record(seq, i, began, time.monotonic(), last_sent,
                                  creds[0] if creds else None, creds[1] if creds else None,
                                  status, outcome, error, retried, gen))
                if outcome != "response" and self.turned_away.is_set():
                    break
        finally:
            client.close()
            self.finished[i] = True

    # -- progress, for waiting on real conditions
    def answered(self, i: int, since: float = 0.0, where: Callable[[Record], bool] | None = None) -> int:
        """Responses client ``i`` received to requests sent at or after ``since``
        (and for which ``where`` holds)."""
        n = 0
        for r in reversed(self.records[i]):     # a client's records are in send order
            if r.sent < since:
                break
            n += r.outcome == "response" and (where is None or where(r))
        return n

    def all_clients_answered(self, since: float = 0.0, where: Callable[[Record], bool] | None = None) -> bool:
        """Every client got a response (for which ``where`` holds) to a request
        sent since ``since``; a client that already stopped counts as done."""
        return all(self.finished[i] or self.answered(i, since, where) for i in range(len(self.clients)))

    def stop(self) -> list[Record]:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 10)
        stuck = [t.name for t in self.threads if t.is_alive()]
        assert not stuck, f"client threads did not finish: {stuck}"
        return sorted(itertools.chain.from_iterable(self.records), key=lambda r: r.sent)

    @property
    def connections(self) -> int:
        return sum(c.connections for c in self.clients)

    @property
    def retries(self) -> int:
        return sum(c.retries for c in self.clients)


def probe(port: int, headers: dict | None = None, path: str = "/p/probe") -> tuple[int, str]:
    """One request on a fresh connection: (status, X-Soak-Generation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Soak-Generation") or ""
    finally:
        conn.close()


def latency_summary(records: list[Record]) -> str:
    took = sorted(r.received - r.sent for r in records if r.outcome == "response")
    if not took:
        return "no responses"
    pick = lambda q: took[min(len(took) - 1, int(q * len(took)))] * 1000  # noqa: E731
    return f"latency p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {took[-1] * 1000:.0f} ms"


def status_counts(records: list[Record]) -> dict:
    counts: dict = {}
    for r in records:
        key = r.status if r.outcome == "response" else r.outcome
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: str(kv[0])))

