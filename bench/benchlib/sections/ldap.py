"""A directory-backed proxy: slapd started with the integration tests'
launcher behind mod_auth_proxy, stock mod_authnz_ldap and Squid's
basic_ldap_auth, with what each asks the directory."""

from __future__ import annotations

from directory_servers import PEOPLE, Slapd
from harness import basic

from ..matrix import PASSWORD, USER
from ..report import fmt_rps, progress
from ..run import Run
from ..servers import Squid


def measure(run: Run) -> None:
    """A directory-backed proxy: ours, stock mod_authnz_ldap with mod_ldap's
    cache, and Squid's basic_ldap_auth, with what each asks the directory."""
    a = run.args
    progress("== LDAP-backed proxy")
    slapd = Slapd(run.work / "slapd").start()
    try:
        slapd.add_tree({USER: PASSWORD})
        url = f"{slapd.url}/{PEOPLE}?uid"
        rows = []
        creds = basic(USER, PASSWORD)
        cases = [("httpd, no auth", "noauth", None),
                 ("mod_auth_proxy, AuthProxyProvider ldap (warm)", "proxy-ldap", None),
                 ("stock mod_auth_basic + mod_authnz_ldap, mod_ldap cache (LDAPCacheEntries 1024)", "stock-ldap", None)]
        if "squid" in a.servers:
            cases += [("Squid, no auth", "squid-noauth", None),
                      ("Squid basic_ldap_auth (credentialsttl 2 hours)", "squid-ldap",
                       f"/usr/lib/squid/basic_ldap_auth -b {PEOPLE} -f uid=%s -H {slapd.url}")]
        baseline = {}
        for label, kind, program in cases:
            if kind.startswith("squid"):
                server = run.launch(Squid(run.work, run.backend, None, auth_program=program))
                t = run.targets(server, "squid", creds if program else None)["forward"]
            else:
                server = run.launch(run.front(kind, url))
                t = run.targets(server, kind, None if kind == "noauth" else creds)["reverse"]
            try:
                run.check(t, label)
                run.wrk.run(t, a.warmup)
                ops0 = slapd.operations()
                r = run.wrk.run(t, a.duration)
                ops = slapd.operations() - ops0
                per_1000 = ops / max(1, r.requests) * 1000
                base = baseline.get("squid" if kind.startswith("squid") else "httpd")
                if kind in ("noauth", "squid-noauth"):
                    baseline["squid" if kind.startswith("squid") else "httpd"] = r.rps
                ratio = f" ({r.rps / base:.2f}×)" if base else ""
                rows.append(f"| {label} | {fmt_rps(r.rps)}{ratio} | {per_1000:,.2f} |"
                            + (f" ⚠{r.bad} failed" if r.bad else ""))
                progress(f"ldap {label}: {r.rps:,.0f} req/s, {per_1000:.2f} LDAP operations per 1,000 requests")
            finally:
                run.retire(server)
    finally:
        slapd.stop()
    lines = ["## An LDAP-backed proxy (slapd on loopback)", "",
             f"One user in a real slapd (OpenLDAP, mdb, started by the benchmark with its stats log on), "
             f"authenticated on every request; wrk, {a.duration:g} s per row after {a.warmup:g} s of warm-up. "
             "httpd rows go through the reverse proxy, Squid rows through Squid's forward port (its "
             "accelerator port answers 401 and reads `Authorization`). LDAP operations are the BIND, SRCH "
             "and CMP lines slapd logged during the measured run, per 1,000 requests. mod_auth_proxy runs "
             "with mod_ldap's caches at their defaults too; its own credential cache answers first, so a "
             "user costs one bind per `AuthProxyCacheTimeout` for the whole server.", "",
             "| Server | req/s (× no-auth) | LDAP operations per 1,000 requests |", "|---|---|---|"] + rows + [""]
    run.sections_md.append("\n".join(lines))
