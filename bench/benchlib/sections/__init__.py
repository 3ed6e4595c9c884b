"""The report's sections, in the order they run and appear. Each measures
with the run's servers and clients and appends its Markdown to the run."""

from __future__ import annotations

from ..run import Run
from . import cold, flood, latency, ldap, memory, micro, negotiate, reload, throughput

# name -> (measure, whether it needs mod_auth_proxy among --servers)
SECTIONS = {
    "throughput": (throughput.measure, False),
    "latency": (latency.measure, False),
    "micro": (micro.measure, True),
    "ldap": (ldap.measure, False),
    "cold": (cold.measure, False),
    "reload": (reload.measure, True),
    "memory": (memory.measure, True),
    "flood": (flood.measure, False),
    "negotiate": (negotiate.measure, False),
}


def measure(run: Run) -> None:
    """Every section chosen with --sections."""
    for name, (section, needs_proxy) in SECTIONS.items():
        if name in run.args.sections and (not needs_proxy or "proxy" in run.args.servers):
            section(run)
