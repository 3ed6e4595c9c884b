"""A directory-backed proxy: slapd started with the integration tests'
launcher behind mod_auth_proxy, stock mod_authnz_ldap and Squid's
basic_ldap_auth, with what each asks the directory."""

from __future__ import annotations

from directory_servers import PEOPLE, Slapd
from harness import basic

from ..matrix import PASSWORD, USER
from ..report import fmt_ratio, fmt_rps, progress
from ..run import Run
from ..servers import Squid


NOAUTH_LABEL = {"httpd": "httpd, no auth", "squid": "Squid, no auth"}


def measure(run: Run) -> None:
    """A directory-backed proxy: ours, stock mod_authnz_ldap with mod_ldap's
    cache, and Squid's basic_ldap_auth, each measured paired against the same
    server without authentication, with what each asks the directory."""
    a = run.args
    progress("== LDAP-backed proxy")
    slapd = Slapd(run.work / "slapd").start()
    noauth = {}
    try:
        slapd.add_tree({USER: PASSWORD})
        url = f"{slapd.url}/{PEOPLE}?uid"
        creds = basic(USER, PASSWORD)
        # The no-auth servers stay up: every row alternates with its own.
        noauth["httpd"] = run.launch(run.front("noauth"))
        reference = {"httpd": run.targets(noauth["httpd"], "noauth", None)["reverse"]}
        cases = [("mod_auth_proxy, AuthProxyProvider ldap (warm)", "httpd", "proxy-ldap", None),
                 ("stock mod_auth_basic + mod_authnz_ldap, mod_ldap cache (LDAPCacheEntries 1024)", "httpd",
                  "stock-ldap", None)]
        if "squid" in a.servers:
            noauth["squid"] = run.launch(Squid(run.work, run.backend, None))
            reference["squid"] = run.targets(noauth["squid"], "squid", None)["forward"]
            cases.append(("Squid basic_ldap_auth (credentialsttl 2 hours)", "squid", "squid-ldap",
                          f"/usr/lib/squid/basic_ldap_auth -b {PEOPLE} -f uid=%s -H {slapd.url}"))
        rows = []
        for family, t in reference.items():
            run.check(t, f"{family} no-auth")
            r = run.wrk.measure(t, a.duration, a.warmup)
            rows.append(f"| {NOAUTH_LABEL[family]} | {fmt_rps(r.rps)} | – | – | – |")
        for label, family, kind, program in cases:
            if family == "squid":
                server = run.launch(Squid(run.work, run.backend, None, auth_program=program))
                t = run.targets(server, "squid", creds)["forward"]
            else:
                server = run.launch(run.front(kind, url))
                t = run.targets(server, kind, creds)["reverse"]
            try:
                ops_before = slapd.operations()
                run.check(t, label)  # the row's first request: the cold one
                ops_first = slapd.operations() - ops_before
                r, paired = run.wrk.paired(t, reference[family], a.duration, a.warmup)
                ops_row = slapd.operations() - ops_before
                ratio = f" ({fmt_ratio(r.rps / paired)}×)" if paired else ""
                rows.append(f"| {label} | {fmt_rps(r.rps)}{ratio} | {ops_first} | {ops_row} | "
                            f"{(ops_row - ops_first) / max(1, r.requests) * 1000:,.2f} |"
                            + (f" ⚠{r.bad} failed" if r.bad else ""))
                progress(f"ldap {label}: {r.rps:,.0f} req/s (paired no-auth {paired:,.0f}), LDAP operations: "
                         f"{ops_first} for the first request, {ops_row} for the whole row")
            finally:
                run.retire(server)
    finally:
        for server in noauth.values():
            run.retire(server)
        slapd.stop()
    lines = ["## An LDAP-backed proxy (slapd on loopback)", "",
             "One user in a real slapd (OpenLDAP, mdb, started by the benchmark with its stats log on), "
             "authenticated on every request. httpd rows go through the reverse proxy, Squid rows through "
             "Squid's forward port (its accelerator port answers 401 and reads `Authorization`). Each row is "
             f"measured **paired** with the same server without authentication ({a.warmup:g} s of warm-up, then "
             f"1-second wrk slices of the row and of the no-auth server alternating, {max(2, round(a.duration))} "
             "of each; the row shows its median slice and the median of the pairs' ratios); the no-auth rows "
             f"are one {a.duration:g} s run each, for scale.", "",
             "LDAP operations are the BIND, SRCH and CMP lines slapd logged: for the row's first request "
             "(the cold one), for the whole row (first request, warm-up and every slice), and those after the "
             "first request per 1,000 requests of the slices (the warm-up's requests are not counted, so this "
             "errs high). mod_auth_proxy runs with mod_ldap's caches at their defaults too; "
             "its own credential cache answers first, so a user costs the directory one look-up (the operations of "
             "the first-request column) per `AuthProxyCacheTimeout` for the whole server.", "",
             "| Server | req/s (× no-auth, paired) | LDAP operations: first request | LDAP operations: whole row "
             "| LDAP operations after the first request, per 1,000 measured requests |",
             "|---|---|---|---|---|"] + rows + [""]
    run.sections_md.append("\n".join(lines))
