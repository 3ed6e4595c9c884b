"""Only the user files of ProxyBasic scopes are the module's to read, index, watch and log about.

AuthUserFile is a standard directive: mod_authn_file reads it for AuthType
Basic, mod_auth_digest's file provider for Digest, and .htaccess files may
set it anywhere. The module sees every one of them, but leaves alone those
no ProxyBasic scope uses: no index, no reload, no warning about an htdigest
file that is not an htpasswd file, no error about a file it never needs.
"""

from __future__ import annotations

import subprocess

from harness import basic, curl


def htdigest(path: str, realm: str, user: str, password: str) -> None:
    subprocess.run(["htdigest", "-c", path, realm, user], input=f"{password}\n{password}\n",
                   text=True, check=True, capture_output=True)


def test_files_of_other_auth_types_and_of_htaccess_are_left_alone(make_httpd, backend, server_root, make_users):
    ours = make_users({"alice": "alice-pw"}, ("-s",), name="proxy-users")
    digest = f"{server_root}/digest-users"
    htdigest(digest, "Digest Realm", "dave", "dave-pw")
    missing = f"{server_root}/no-such-basic-users"
    htaccess_ours = make_users({"hank": "hank-pw"}, ("-s",), name="htaccess-proxy-users")

    h = make_httpd(f"""
<Location /p>
    ProxyPass {backend.url}/p
    AuthType ProxyBasic
    AuthName "Proxy"
    AuthUserFile {ours}
    Require valid-user
</Location>
<Location /basic>
    AuthType Basic
    AuthName "Basic"
    AuthUserFile {missing}
    Require valid-user
</Location>
<Location /digest>
    AuthType Digest
    AuthName "Digest Realm"
    AuthDigestProvider file
    AuthUserFile {digest}
    Require valid-user
</Location>
<Directory {{root}}/htdocs>
    AllowOverride AuthConfig
</Directory>
""".replace("{root}", "%s"), extra_modules=["auth_digest"], start=False)
    h.body = h.body % h.root
    for d, rules in {"hta-basic": f'AuthType Basic\nAuthName "B"\nAuthUserFile {missing}-2\nRequire valid-user\n',
                     "hta-proxy": f'AuthType ProxyBasic\nAuthName "P"\nAuthUserFile {htaccess_ours}\n'
                                  "Require valid-user\n"}.items():
        (h.root / "htdocs" / d).mkdir()
        (h.root / "htdocs" / d / ".htaccess").write_text(rules)
        (h.root / "htdocs" / d / "index.html").write_text("local\n")
    h.start()

    assert curl("-H", f"Proxy-Authorization: {basic('alice', 'alice-pw')}", f"{h.url}/p/x").status == 200
    assert curl(f"{h.url}/basic/").status == 401
    assert curl(f"{h.url}/digest/").status == 401
    assert curl("-u", "x:y", f"{h.url}/hta-basic/").status in (401, 500)   # mod_authn_file's answers
    # A ProxyBasic scope a .htaccess sets: its file is read when a request first needs it.
    assert curl("-u", "hank:hank-pw", f"{h.url}/hta-proxy/").status == 200
    assert h.wait_for_log(rf"APX02003: loaded {htaccess_ours}: 1 users")

    ours_lines = [line for line in h.log().splitlines() if "[auth_proxy:" in line]
    for other in (digest, missing):
        assert not [line for line in ours_lines if other in line], "\n".join(ours_lines)
    assert not [line for line in ours_lines if any(n in line for n in ("APX02001", "APX02002", "APX02020"))], \
        "\n".join(ours_lines)
    indexes = sorted(p.name for p in (h.root / "run" / "auth_proxy").iterdir())
    assert len(indexes) == 1, indexes
