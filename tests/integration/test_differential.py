"""Stock httpd is the oracle: the module admits exactly whom stock admits.

Each scenario (differential.py) is one generated configuration run on two
real httpd instances, stock (AuthType Basic) and the module (AuthType
ProxyBasic), with the same seeded sequence of requests and store edits;
every answer is compared. A difference fails with the seeds, both
configurations, the steps up to it and, where it could be reduced in time,
a shorter sequence and configuration that still show it.

    AUTH_PROXY_DIFF_SEED=123        the master seed of the fresh scenarios (printed; random by default)
    AUTH_PROXY_DIFF_SECONDS=150     how long fresh scenarios are run
    AUTH_PROXY_DIFF_SCENARIO=456    run only this scenario seed (as a failure report names it)
    AUTH_PROXY_DIFF_STEPS=300       steps per scenario
    AUTH_PROXY_DIFF_SHRINK_SECONDS=120  time to reduce a difference (0: do not)
    AUTH_PROXY_DIFF_FAILURE_GRACE=5 seconds a password just set at a checking store may still be refused
    AUTH_PROXY_DIFF_MODULE_EXTRA="AuthProxyCacheTimeout 0"  module-only directives, to look past a known difference
    AUTH_PROXY_DIFF_SKIP_OPS=chmod,symlink-attack             edits to leave out, likewise

Scenario seeds that once showed a difference are in REGRESSION_SCENARIOS
and run every time.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest

import differential
from differential import (Run, generate_scenario, generate_steps, render_config, restrict, scenario_summary,
                          settings_line, shrink)
from directory_servers import have
from harness import run_user

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or run_user() != "www-data" or not have("slapd", "ldapmodify", "sqlite3", "htdbm"),
    reason="needs root with a www-data User, slapd, ldap-utils, sqlite3 and htdbm")

SECONDS = float(os.environ.get("AUTH_PROXY_DIFF_SECONDS", "150"))
STEPS = int(os.environ.get("AUTH_PROXY_DIFF_STEPS", "300"))
SHRINK_SECONDS = float(os.environ.get("AUTH_PROXY_DIFF_SHRINK_SECONDS", "120"))

# Scenarios that showed a difference once: (scenario seed, steps, module-only
# directives, edits left out, what it showed), run every time. A seed means
# what the generator in differential.py makes of it: a change to the
# generator has to find its cases again.
QUIET = ("AuthProxyThrottle Off",)                  # no failure memory: look at the credential cache
NO_CACHE = ("AuthProxyCacheTimeout 0",)            # no credential cache: look at the failure memory
NO_PRIVILEGE_EDITS = ("chmod", "symlink-attack")
REGRESSION_SCENARIOS: list = [
    (1819850095, 8, (), (), "symlink to a root-only file: its hashes in the User-readable index"),
    (1222356005, 129, (), (), "user file chmod 0600: its new hashes in the User-readable index"),
    (1640193506, 15, (), (), "cached LDAP user: REMOTE_USER not the mail attribute, Require group refuses"),
    (1722851096, 73, (), (), "cached LDAP user: REMOTE_USER not the mail attribute"),
    (547756574, 69, (), (), "another Location's DBM file admits a cached user"),
    (288545018, 157, (), (), "failure memory refuses a password just set in SQL"),
    (69975896, 165, QUIET, NO_PRIVILEGE_EDITS, "the other vhost's cached DBM grant outlives a password change"),
    (217, 33, QUIET, NO_PRIVILEGE_EDITS, "an unfiltered LDAP scope's cached grant passes AuthLDAPURL's filter"),
    (921032232, 149, QUIET, NO_PRIVILEGE_EDITS, "cached LDAP grant passes another scope's filter"),
    (1716087198, 86, (), (), "failure memory: a user deleted from the first provider (SQL) is refused, not "
                             "passed on to the next (DBM)"),
    (1984727110, 148, NO_CACHE, NO_PRIVILEGE_EDITS, "failure memory refuses a password just set in SQL"),
    (1840099285, 175, NO_CACHE, NO_PRIVILEGE_EDITS, "failure memory refuses a password just set in LDAP"),
    (1262072829, 151, (), (), "cached LDAP grant first refused with 403, admitted once a group edit lets it in"),
    (951939751, 197, (), (), "cached DBM grant of a removed user refused by authorization, where stock goes on to "
                             "an unreadable user file (500)"),
    (287376285, 273, (), (), "the test's restore of an attacked user file left it missing for a moment, and the "
                             "module's log of that moment passed for having taken up the restore"),
]


def report(seed_line: str, scenario_seed: int, steps: list, diff, run, shrunk=None) -> str:
    stock, module = run.configs()
    lines = [seed_line,
             f"DIFFERENCE in scenario {scenario_seed} at step {diff.index}: {diff.step.describe()}",
             f"  stock:  {diff.stock}", f"  module: {diff.module}"]
    if diff.detail:
        lines.append(f"  {diff.detail}")
    lines.append(f"reproduce: {settings_line()} AUTH_PROXY_DIFF_SCENARIO={scenario_seed} "
                 f"AUTH_PROXY_DIFF_STEPS={diff.index + 1} ctest -R integration.test_differential")
    if shrunk:
        few, keep = shrunk
        lines.append(f"reduced to {len(few)} steps" + (f", scopes {sorted(keep)}" if keep else "") + ":")
        lines += [f"  {s.describe()}" for s in few]
        if keep:
            scenario = restrict(generate_scenario(scenario_seed), keep)
            paths = run.stores.paths
            lines += ["reduced stock configuration (after the harness preamble):",
                      render_config(scenario, paths, False, run.backend.url, run.servers.stock.port_list),
                      "reduced module configuration:",
                      render_config(scenario, paths, True, run.backend.url, run.servers.module.port_list)]
    lines += [scenario_summary(generate_scenario(scenario_seed)), "steps up to the difference:"]
    lines += [f"  {i:4d} {s.describe()}" for i, s in enumerate(steps[: diff.index + 1])]
    if run.notes:
        lines += ["notes:"] + [f"  {n}" for n in run.notes]
    lines += ["stock configuration:", stock, "module configuration:", module]
    return "\n".join(lines)


def run_scenario(scenario_seed: int, count: int, workdir: Path, backend, seed_line: str,
                 deadline: float | None = None) -> str | None:
    """Runs one scenario; the report of its difference, or None."""
    scenario = generate_scenario(scenario_seed)
    steps = generate_steps(scenario, count)
    root = workdir / f"scenario-{scenario_seed}"
    print(f"scenario {scenario_seed}: {scenario.mpm}, {len(scenario.scopes)} scopes, "
          f"stores {sorted(scenario.stores)}, {len(steps)} steps", flush=True)
    with Run(scenario, root, backend) as run:
        diff = run.run(steps, deadline)   # a prefix of the same sequence, if cut at the deadline
        crashes = run.servers.crashes()
        assert not crashes, f"{seed_line}, scenario {scenario_seed}: crash lines:\n" + "\n".join(crashes)
        print(f"  {run.summary()}", flush=True)
        if diff is None:
            for note in run.notes:
                print(f"  note: {note}")
            return None
        text = report(seed_line, scenario_seed, steps, diff, run)
    print(text, flush=True)
    if SHRINK_SECONDS > 0 and diff.kind == "answer":
        shrunk = shrink(scenario_seed, steps, diff, workdir / "shrink", backend, SHRINK_SECONDS)
        with Run(generate_scenario(scenario_seed), root, backend) as run:   # for the configurations only
            text = report(seed_line, scenario_seed, steps, diff, run, shrunk)
        print(text, flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return text


@pytest.fixture
def workdir(server_root):
    return Path(server_root)


@pytest.mark.parametrize("scenario_seed, steps, extra, skip, found", REGRESSION_SCENARIOS,
                         ids=[f"{c[0]}-{c[4]}" for c in REGRESSION_SCENARIOS])
def test_scenarios_that_once_differed_agree(workdir, backend, monkeypatch, scenario_seed, steps, extra, skip, found):
    monkeypatch.setattr(differential, "MODULE_EXTRA", list(extra))
    monkeypatch.setattr(differential, "SKIP_OPS", set(skip))
    monkeypatch.setattr(sys.modules[__name__], "SHRINK_SECONDS", 0)   # each case is short already
    text = run_scenario(scenario_seed, steps, workdir, backend, f"regression scenario {scenario_seed} ({found})")
    assert text is None, text


def test_fresh_scenarios_agree_with_stock_httpd(workdir, backend):
    only = os.environ.get("AUTH_PROXY_DIFF_SCENARIO")
    master = int(os.environ.get("AUTH_PROXY_DIFF_SEED") or random.SystemRandom().getrandbits(32))
    seed_line = f"AUTH_PROXY_DIFF_SEED={master}"
    print(f"\n{seed_line} (AUTH_PROXY_DIFF_SECONDS={SECONDS:g}, AUTH_PROXY_DIFF_STEPS={STEPS})", flush=True)
    if only:
        text = run_scenario(int(only), STEPS, workdir, backend, f"AUTH_PROXY_DIFF_SCENARIO={only}")
        assert text is None, text
        return
    seeds = random.Random(master)
    deadline = time.monotonic() + SECONDS
    failures, scenarios = [], 0
    while time.monotonic() < deadline:
        scenario_seed = seeds.getrandbits(31)
        scenarios += 1
        text = run_scenario(scenario_seed, STEPS, workdir, backend, seed_line, deadline)
        if text:
            failures.append(text)
    print(f"{scenarios} scenarios, {len(failures)} with a difference ({seed_line})")
    assert not failures, f"{len(failures)} of {scenarios} scenarios differ ({seed_line}):\n\n" + \
        "\n\n".join(failures)
