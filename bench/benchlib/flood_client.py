"""A distributed guess flood, as its own process (so that its threads never
share an interpreter with the client being measured): N threads, each
sending wrong passwords for one user back to back, every guess on a new
connection from a new IPv6 /48, so that no address ever reaches a throttle
limit. Prints one JSON line: the statuses seen and how many guesses were
sent. Run by sections/flood.py, which routes the prefix to lo first.

    flood_client.py PORT6 THREADS SECONDS HEADER USER FIRST_BLOCK48
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import sys
import threading
import time


def source(block48: int) -> str:
    """The block48-th /48 of 2001:db8:8000::/33 (0-32767), host ::1."""
    return f"2001:db8:{0x8000 + block48 % 0x8000:x}::1"


def main(argv: list[str]) -> int:
    port6, threads, seconds = int(argv[0]), int(argv[1]), float(argv[2])
    # The guessers stand in for machines that are not the server's: on the
    # server's own cores they run only when nothing of the server wants one.
    os.nice(19)
    header, user, first = argv[3], argv[4], int(argv[5])
    blocks = itertools.count(first)
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def guesser(k: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            with lock:
                block = next(blocks)
            n += 1
            token = base64.b64encode(f"{user}:wrong-{k}-{n}".encode()).decode()
            request = (f"GET /r/static.txt HTTP/1.1\r\nHost: localhost\r\n{header}: Basic {token}\r\n"
                       "Connection: close\r\n\r\n").encode()
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                    s.settimeout(120)
                    s.bind((source(block), 0))
                    s.connect(("::1", port6))
                    s.sendall(request)
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none"
            except OSError as e:
                status = "error"
                with lock:
                    if len(errors) < 5:
                        errors.append(str(e))
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    workers = [threading.Thread(target=guesser, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"statuses": statuses, "sent": sum(statuses.values()), "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
