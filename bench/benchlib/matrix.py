"""What the benchmark varies: hash formats, file sizes, server kinds, modes,
and the users it authenticates as."""

from __future__ import annotations

USER, PASSWORD = "alice", "bench-secret"          # the authenticated user, last in every file
COLD_PASSWORD = "cold-secret"
FILLER_PASSWORD = "filler-password"                # every filler user's password (one shared hash)
STATIC = "static.txt"                              # the backend's small static file
STATIC_BODY = ("mod_auth_proxy benchmark payload " * 8).encode()[:256]

FORMATS = {  # key: (label, htpasswd flags)
    "sha": ("{SHA}", ["-s"]),
    "apr1": ("APR1-MD5", ["-m"]),
    "bcrypt10": ("bcrypt cost 10", ["-B", "-C", "10"]),
    "bcrypt12": ("bcrypt cost 12", ["-B", "-C", "12"]),
    "sha512": ("SHA-512 crypt", ["-5"]),
}
SIZES = [1000, 100000, 1000000]
SERVERS = {
    "proxy": "mod_auth_proxy",
    "stock": "stock mod_auth_basic + mod_authn_file",
    "socache": "stock + mod_authn_socache",
    "squid": "Squid basic_ncsa_auth",
}
# Reference rows of the throughput table that are not a --servers choice:
# mod_auth_proxy with its guessing throttle off (the "proxy" rows run it on, its default).
THROTTLE_OFF = "proxy-throttle-off"
LABELS = {**SERVERS, THROTTLE_OFF: "mod_auth_proxy, throttle off"}
AUTH_PROXY_KINDS = ("proxy", THROTTLE_OFF, "proxy-ldap")
MODES = ["reverse", "forward"]
