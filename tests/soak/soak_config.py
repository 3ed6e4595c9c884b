"""The httpd configuration every soak test runs: one proxied Location, sized for 64 clients.

The harness's preamble sizes httpd for a handful of clients (16 threads, 8
prefork children); the directives here come after it and win, so 64
keep-alive connections each hold a thread or process of their own instead of
queueing in the listen backlog.
"""

from __future__ import annotations

from harness import proxy_basic_auth

CLIENTS = 64

# Room for CLIENTS busy connections plus spares, from the start: no child is
# started or stopped for load during the run.
MPM_SIZING = {
    "event": """ServerLimit 8
ThreadsPerChild 32
StartServers 3
MinSpareThreads 32
MaxSpareThreads 128
MaxRequestWorkers 256""",
    "prefork": """ServerLimit 80
StartServers 72
MinSpareServers 8
MaxSpareServers 80
MaxRequestWorkers 80""",
}
MPM_SIZING["worker"] = MPM_SIZING["event"]

# The soak sends stale and wrong passwords on purpose; a guessing throttle
# (once the module has one) would turn its clients away with 429.
THROTTLE_OFF = """<IfDirective AuthProxyThrottle>
    AuthProxyThrottle Off
</IfDirective>"""

# With the throttle off, those clients are a guess flood from one address:
# each wrong password costs a hash, more at once than a small machine's
# default AuthProxyVerifyLimit lets run, and the excess would be shed with
# 503 (test_verify_limit.py tests that). This soak is about file changes, so
# every client gets a hash slot of its own.
VERIFY_FOR_EVERY_CLIENT = f"""<IfDirective AuthProxyVerifyLimit>
    AuthProxyVerifyLimit {CLIENTS}
</IfDirective>"""


def soak_body(backend, mpm: str, users: str | None, generation: int = 0) -> str:
    """The config after the harness preamble. ``users`` None: the same
    configuration without the ProxyBasic lines. ``generation`` comes back in
    X-Soak-Generation, so a client knows which generation answered it."""
    auth = proxy_basic_auth(users, realm="Soak") if users else ""
    return f"""
{MPM_SIZING[mpm]}
{THROTTLE_OFF}
{VERIFY_FOR_EVERY_CLIENT}
Header always set X-Soak-Generation "{generation}"
# Which child answered which request and how long it took (µs), for evidence.
LogFormat "%{{X-Soak-Seq}}i %P %>s %D" soak
CustomLog logs/soak_log soak

<Location /p>
    ProxyPass {backend.url}/p
{auth}</Location>
"""


def answering_pids(h) -> dict[int, str]:
    """X-Soak-Seq -> pid of the child that answered it, from logs/soak_log."""
    out = {}
    try:
        text = (h.root / "logs" / "soak_log").read_text(errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        seq, pid, _status = line.split(" ", 2)
        if seq.isdigit():
            out[int(seq)] = pid
    return out
