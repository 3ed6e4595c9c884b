"""The reference pages say what the module does, and nothing it does not.

docs/directives.md is compared with the directives the built module
registers in the real httpd (`httpd -L`, which lists every directive with
the module that defines it) and with the contexts httpd enforces for them;
docs/log-messages.md with every APX number, and its levels, that the
module's source can log. As mod_auth_openidc's check_directives.sh does for
its directives: a directive or log line added, renamed or removed without
its documentation fails here.

The README is the front door: short, with the two commands on its first
screen, and its set-up steps work as written: the user commands create
the file its configuration names, from any directory; the packages and
variables it names are the scripts' own; a build by hand needs no Boost.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from harness import REPO_ROOT, Httpd, basic, curl, doc_recipe

DIRECTIVES_PAGE = REPO_ROOT / "docs" / "directives.md"
LOG_PAGE = REPO_ROOT / "docs" / "log-messages.md"
SOURCE = REPO_ROOT / "mod_src"
FIELDS = ["Description", "Syntax", "Default", "Context", "Override", "Status", "Module"]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
README = REPO_ROOT / "README.md"
README_MAX_LINES = 150
FIRST_SCREEN = 40       # lines a terminal or a repository page shows before any scrolling
# The changelog names what was renamed or removed, on purpose.
CURRENT_PAGES = [page for page in PAGES if page.name != "changelog.md"]


# ------------------------------------------------------------ directives

@pytest.fixture(scope="module")
def httpd(tmp_path_factory):
    """An httpd configuration that loads the module; never started."""
    return Httpd(tmp_path_factory.mktemp("docs") / "httpd")


@pytest.fixture(scope="module")
def registered(httpd) -> dict:
    """Directive name -> where httpd allows it, for every directive mod_auth_proxy registers."""
    httpd.write_config()
    out = httpd.command("-L")
    assert out.returncode == 0, out.stderr
    found = {}
    for block in re.split(r"\n(?=\S)", out.stdout):
        head, *lines = block.split("\n")
        m = re.fullmatch(r"(\S+) \((\S+)\)", head)
        if m and re.fullmatch(r"mod_auth_proxy\.\w+", m.group(2)):
            found[m.group(1)] = " ".join(line.strip() for line in lines[1:])
    assert found, f"no directive of mod_auth_proxy in httpd -L:\n{out.stdout}"
    return found


def sections(page, heading: str) -> dict:
    """Key -> text of every section whose heading matches @p heading (its one group is the key)."""
    parts = re.split(heading, page.read_text(), flags=re.M)
    out = {}
    for key, body in zip(parts[1::2], parts[2::2]):
        assert key not in out, f"{key} is documented twice in {page.name}"
        out[key] = body
    return out


def documented_directives() -> dict:
    """Directive name -> {field: value} for every "## Name Directive" of the page."""
    return {name: dict(re.findall(r"^\| (\w+) \| (.*?) \|$", body, re.M))
            for name, body in sections(DIRECTIVES_PAGE, r"^## (\S+) Directive\n").items()}


def test_every_registered_directive_is_documented_and_every_documented_one_exists(registered):
    documented = set(documented_directives())
    assert sorted(set(registered) - documented) == [], "registered by the module but not in docs/directives.md"
    assert sorted(documented - set(registered)) == [], "in docs/directives.md but not registered by the module"


@pytest.mark.parametrize("name,entry", sorted(documented_directives().items()))
def test_each_directive_entry_has_the_fields_of_httpds_manual(name, entry):
    missing = [f for f in FIELDS if not entry.get(f, "").strip()]
    assert missing == [], f"{name} lacks {missing}"
    assert entry["Syntax"].startswith(f"`{name}"), entry["Syntax"]
    assert "mod_auth_proxy" in entry["Module"]
    assert "External" in entry["Status"]


def default_argument(name: str, entry: dict) -> str | None:
    """The value the Default field shows (`Name value`), or None for "none"."""
    m = re.fullmatch(rf"`{name} (.+)`", entry["Default"])
    return m.group(1) if m else None


def test_documented_contexts_are_the_ones_httpd_enforces(registered, httpd):
    documented = documented_directives()
    for name, allowed in sorted(registered.items()):
        entry = documented[name]
        if "AllowOverride includes AuthConfig" in allowed:
            assert (entry["Context"], entry["Override"]) == ("directory, .htaccess", "AuthConfig"), name
            continue
        if "only inside <Directory>" in allowed:
            # Sections of the main configuration only: never .htaccess, never server level.
            assert entry["Context"] == "directory" and entry["Override"].startswith("none"), name
            httpd.body = f"{name} x\n"
            assert "not allowed here" in httpd.configtest().stderr, f"{name} at server level"
            continue
        assert "outside <Directory>" in allowed, f"{name}: {allowed}"
        assert entry["Context"] in ("server config", "server config, virtual host"), name
        assert entry["Override"].startswith("none"), name
        value = default_argument(name, entry)
        httpd.body = f"<VirtualHost 127.0.0.1:{httpd.port}>\n    {name} {value or 'x'}\n</VirtualHost>\n"
        refused = "cannot occur within <VirtualHost> section" in httpd.configtest().stderr
        assert refused == ("virtual host" not in entry["Context"]), f"{name} in <VirtualHost>"
        if value is not None:
            httpd.body = f"{name} {value}\n"
            result = httpd.configtest()
            assert result.returncode == 0, f"the documented default of {name}: {result.stderr}"


# ------------------------------------------------------------ log messages

HTTPD_LEVELS = {"EMERG": "emerg", "ALERT": "alert", "CRIT": "crit", "ERR": "error", "WARNING": "warn",
                "NOTICE": "notice", "INFO": "info", "DEBUG": "debug"}


def glue_numbers() -> dict:
    """APX number -> httpd levels, for each ap_log_*error() of the glue that carries one:
    "APXLOGNO(nnnnn)" in front, or "(APXnnnnn)" at the end of a failed-login line."""
    found: dict = {}
    everywhere = set()
    for path in sorted(SOURCE.glob("*.cpp")):
        text = path.read_text()
        everywhere |= set(re.findall(r"APXLOGNO\((\d{5})\)|\(APX(\d{5})\)", text))
        for level, rest in re.findall(r"ap_log_[rcp]?error\(\s*APLOG_MARK\s*,\s*([^,]+),(.*?)\);", text, re.S):
            levels = {HTTPD_LEVELS[m] for m in re.findall(r"APLOG_([A-Z]+)\b", level) if m in HTTPD_LEVELS}
            for pair in re.findall(r"APXLOGNO\((\d{5})\)|\(APX(\d{5})\)", rest):
                assert levels, f"{path.name}: no level for APX{''.join(pair)} in '{level}'"
                found.setdefault("".join(pair), set()).update(levels)
    unparsed = {"".join(p) for p in everywhere} - set(found)
    assert unparsed == set(), f"APX numbers outside a call this test can read: {unparsed}"
    return found


def core_numbers() -> dict:
    """APX number -> httpd levels, for each LogId the core logs (printed as APX%05d)."""
    enum = re.search(r"enum class LogId : int \{(.*?)\};", (REPO_ROOT / "include/auth_proxy/log.hpp").read_text(),
                     re.S)
    ids = {name: int(n) for name, n in re.findall(r"(\w+) = (\d+)", enum.group(1))}
    runtime = (SOURCE / "auth_proxy_runtime.cpp").read_text()
    to_httpd = {core: HTTPD_LEVELS[httpd] for core, httpd in
                re.findall(r"case LogLevel::(\w+):\s*httpd_level = APLOG_([A-Z]+);", runtime)}
    assert set(to_httpd) == {"error", "warning", "info", "debug"}, to_httpd
    found: dict = {}
    for path in sorted((SOURCE / "core").rglob("*.cpp")):
        for args, name in re.findall(r"\blog_?\(([^;]*?)LogId::(\w+)", path.read_text()):
            levels = {to_httpd[level] for level in re.findall(r"LogLevel::(\w+)", args)}
            assert levels, f"{path.name}: no level for LogId::{name}"
            found.setdefault(f"{ids[name]:05d}", set()).update(levels)
    return found


def emitted_numbers() -> dict:
    glue, core = glue_numbers(), core_numbers()
    assert set(glue) & set(core) == set(), "a number used by both the glue and the core"
    return {**glue, **core}


def documented_numbers() -> dict:
    """APX number -> {field: value} for every "### APXnnnnn" of the catalogue."""
    return {number: dict(re.findall(r"^- \*\*([\w ]+):\*\* (.+)$", body, re.M))
            for number, body in sections(LOG_PAGE, r"^### APX(\d{5})\n").items()}


def test_every_number_the_source_logs_is_documented_and_no_other():
    emitted, documented = set(emitted_numbers()), set(documented_numbers())
    assert sorted(emitted - documented) == [], "logged by the module but not in docs/log-messages.md"
    assert sorted(documented - emitted) == [], "in docs/log-messages.md but never logged by the module"


def test_each_documented_number_has_the_levels_the_source_logs_it_at():
    emitted = emitted_numbers()
    for number, entry in sorted(documented_numbers().items()):
        missing = [f for f in ("Level", "Message", "Meaning", "What to do") if f not in entry]
        assert missing == [], f"APX{number} lacks {missing}"
        assert set(entry["Level"].split(", ")) == emitted.get(number), f"APX{number}"


# ------------------------------------------------------------ the pages agree with each other

@pytest.fixture
def status_fields(make_httpd, users) -> set:
    """The AuthProxy... names the module prints in server-status?auto."""
    h = make_httpd(f"""
<Location /server-status>
    SetHandler server-status
</Location>
<Location /p>
    ProxyPass http://127.0.0.1:9/p
    AuthType ProxyBasic
    AuthName "docs"
    AuthUserFile {users}
    Require valid-user
</Location>
""", extra_modules=["status"])
    r = curl(h.url + "/server-status?auto")
    assert r.status == 200
    fields = set(re.findall(r"^(AuthProxy[A-Za-z]+)", r.body.decode(), re.M))
    assert fields, r.body.decode()
    return fields


def test_every_apx_number_directive_and_status_field_the_pages_name_exists(registered, status_fields):
    emitted = set(emitted_numbers())
    for page in CURRENT_PAGES:
        text = page.read_text()
        unknown = sorted(set(re.findall(r"APX(\d{5})", text)) - emitted)
        assert unknown == [], f"{page.name} names APX numbers the module never logs"
        named = set(re.findall(r"\bAuthProxy[A-Za-z]+\b(?!<)", text)) - set(registered) - status_fields
        # "AuthProxyFailures<Reason>" stands for a family of status fields.
        families = {f for f in re.findall(r"\b(AuthProxy[A-Za-z]+)<", text)
                    if not any(field.startswith(f) and field != f for field in status_fields)}
        unknown = sorted(named | families)
        assert unknown == [], f"{page.name} names directives (or server-status fields) the module does not have"


def anchors(page) -> set:
    """GitHub's anchor of every heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


def without_code(text: str) -> str:
    """@p text without its fenced blocks, which are configuration, not links."""
    return re.sub(r"^```.*?^```$", "", text, flags=re.M | re.S)


def test_links_between_the_pages_reach_their_file_and_heading():
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^()#\s]*)(?:#([^()\s]+))?\)", without_code(page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue        # https:, mailto: ...
            linked = (page.parent / target) if target else page
            assert linked.exists(), f"{page.name} links to {target}, which does not exist"
            if anchor:
                assert linked.suffix == ".md", f"{page.name} links to {target}#{anchor}"
                assert anchor in anchors(linked), f"{page.name} links to {target}#{anchor}: no such heading"


# ------------------------------------------------------------ the README as a front door

def commands(text: str, program: str) -> list:
    """Each command line of an indented code block of @p text that runs @p
    program, as its argument list: sudo and a trailing comment left out."""
    found = []
    for line in re.findall(r"^    (?!\s)(.+)$", text, re.M):
        words = shlex.split(line, comments=True)
        if words[:1] == ["sudo"]:
            words = words[1:]
        if words[:1] == [program]:
            found.append(words)
    return found


def front_matter() -> str:
    """The README up to its first "## " heading: what it is, the configuration, the commands."""
    return README.read_text().split("\n## ")[0]


def section(heading: str) -> str:
    """The text of the README section under @p heading, up to the next heading of its level or above."""
    level = heading.split(" ")[0]
    m = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", README.read_text(), re.M | re.S)
    assert m, f"the README has no section {heading!r}"
    return m.group(1)


def test_the_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, \
        f"README.md has {lines} lines: reference material belongs in docs/, the README links to it"


def test_the_first_screen_shows_what_it_is_a_configuration_and_both_commands():
    first = "\n".join(README.read_text().split("\n")[:FIRST_SCREEN])
    assert "AuthType ProxyBasic" in first and "AuthUserFile" in first, "no configuration on the first screen"
    for command in ("scripts/demo", "scripts/test"):
        assert commands(first, command), f"`{command}` is not a command on the README's first screen"


def readme_user_file() -> str:
    paths = re.findall(r"^\s*AuthUserFile\s+(\S+)", README.read_text(), re.M)
    assert len(set(paths)) == 1, f"the README's configuration names {paths}: one user file"
    return paths[0]


def test_the_user_commands_name_the_configurations_file_and_the_first_creates_it():
    path = readme_user_file()
    assert os.path.isabs(path), \
        "AuthUserFile is relative to the ServerRoot, a shell command to its directory: show an absolute path"
    found = commands(README.read_text(), "htpasswd")
    assert found, "the README shows no htpasswd command"
    for words in found:
        assert path in words, f"{shlex.join(words)} is not about {path}, the file the configuration names"
    first = found[0]
    assert any(w.startswith("-") and "c" in w for w in first[1:first.index(path)]), \
        f"{shlex.join(first)}: the first user needs -c, which creates the file"
    examples = sorted((REPO_ROOT / "conf").glob("example-*.conf"))
    for example in examples:
        assert re.findall(r"^\s*AuthUserFile\s+(\S+)", example.read_text(), re.M) == [path], \
            f"{example.name}, which the README copies, names another user file than {path}"


def test_the_readmes_configuration_and_user_commands_work_as_written(make_httpd, backend, server_root, tmp_path):
    """The user commands under the README's configuration, run in order from a
    directory that is not the ServerRoot, with no user file yet: its
    configuration then answers 407, 200 for each user left, 407 for one removed."""
    shown = readme_user_file()
    user_file = os.path.join(server_root, "proxy.htpasswd")
    recipe = doc_recipe("readme", {"http://127.0.0.1:8081": backend.url, shown: user_file}, page="README.md")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    passwords, removed = {}, []
    for words in commands(front_matter(), "htpasswd"):
        words = [user_file if w == shown else w for w in words]
        user = words[-1]
        password = f"{user}-password"
        # -i: the password from stdin, where a person types it at the prompt.
        args = words if "-D" in words else [words[0], "-i", *words[1:]]
        done = subprocess.run(args, cwd=elsewhere, input=password + "\n", capture_output=True, text=True)
        assert done.returncode == 0, f"{shlex.join(words)}: {done.stderr}"
        if "-D" in words:
            removed.append((user, passwords.pop(user)))
        else:
            passwords[user] = password
    assert passwords, "the README adds no user"
    h = make_httpd(recipe.config, extra_modules=[m for m in recipe.modules if m != "auth_proxy"])
    url = h.url + "/app"
    assert curl(url).status == 407
    for user, password in passwords.items():
        assert curl("-H", f"Proxy-Authorization: {basic(user, password)}", url).status == 200, user
    for user, password in removed:
        assert curl("-H", f"Proxy-Authorization: {basic(user, password)}", url).status == 407, user


def build_packages() -> set:
    """What building the module needs: scripts/deps.sh's BUILD_PACKAGES."""
    deps = (REPO_ROOT / "scripts" / "deps.sh").read_text()
    return set(re.search(r"^BUILD_PACKAGES=\((.*?)\)", deps, re.M | re.S).group(1).split())


def script_packages(script: str) -> set:
    """Every Debian package @p script asks ensure_packages for (BUILD_PACKAGES expanded)."""
    found = set()
    for line in re.findall(r"\bensure_packages (.+)", (REPO_ROOT / script).read_text()):
        for word in shlex.split(line, comments=True):
            if word in ("||", "&&", ";"):
                break
            found |= build_packages() if word == "${BUILD_PACKAGES[@]}" else {word}
    assert found, f"{script} installs nothing?"
    return found


def words_of(text: str) -> set:
    return set(re.findall(r"[\w.+-]+", text))


def test_the_readme_names_every_package_scripts_test_installs():
    missing = sorted(script_packages("scripts/test") - words_of(section("## The tests")))
    assert missing == [], "scripts/test installs these, and the README's \"The tests\" does not say so"
    assert "npm ci" in section("## The tests")


def test_a_build_by_hand_names_its_packages_and_needs_no_boost(tmp_path):
    by_hand = section("### By hand")
    missing = sorted(build_packages() - words_of(by_hand))
    assert missing == [], "packages the build needs that the README does not name"
    shown = commands(by_hand, "cmake")[0]
    configure = shown[:shown.index("&&")] if "&&" in shown else shown
    assert configure == ["cmake", "-S", ".", "-B", "build"], f"this test runs that step as {configure}"
    # The README's configure step exactly, in a scratch build directory, with Boost out of reach.
    done = subprocess.run(["cmake", "-S", str(REPO_ROOT), "-B", str(tmp_path / "build"),
                           "-DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the build by hand needs Boost:\n{done.stdout}\n{done.stderr}"


def test_the_readme_documents_the_demos_ports_and_variables():
    demo = (REPO_ROOT / "scripts" / "demo").read_text()
    settings = re.findall(r"^(\w+)=\$\{\1:-([^}]*)\}$", demo, re.M)
    assert {name for name, _ in settings} >= {"PROXY_PORT", "BACKEND_PORT", "DEMO_ROOT"}, settings
    text = section("## The demo")
    for name, default in settings:
        assert f"`{name}`" in text, f"the README does not name the demo's {name}"
        assert f"`{default}`" in text, f"the README does not give {name}'s default, {default}"
def test_the_changelog_names_every_metric_rename():
    """A renamed metric breaks dashboards: the changelog names the old and the new name."""
    text = (REPO_ROOT / "docs" / "changelog.md").read_text()
    for old, new in [("auth_proxy_last_reload_seconds", "auth_proxy_last_reload_duration_seconds")]:
        assert old in text and new in text, (old, new)
