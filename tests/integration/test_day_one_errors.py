"""Issue 28, errors: every problem of a site file on its own line (file, line, field), every broken site under
--all, no planted secret (nor a prefix of it) in any output, an unknown secret key refused with "did you mean"
unless the site says it comes later, a missing age key file named as missing."""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.errors import SiteError
from generator.loader import load_site_file
from tests.helpers import MINIMAL_SITE, PROJECT, build_file_tree, generator
from tests.keys import age_key, sealing_pair, sops_rules

pytestmark = pytest.mark.tools

PLANTED = "sk-proj-PLANTED" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def _leaks(text: str) -> list[str]:
    """The planted value, or any 6+ character piece of it, in ``text``."""
    pieces = {PLANTED[i:i + 6] for i in range(len(PLANTED) - 5)}
    return sorted(piece for piece in pieces if piece in text)


# --- every problem, every site ------------------------------------------------------------------------------

THREE_PROBLEMS = MINIMAL_SITE + "replicas: many\nnamespcae: x\nimage: {tag: 5}\n"


def test_every_problem_of_a_site_file_is_reported_on_its_own_line(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"sites/a/site.yaml": THREE_PROBLEMS})
    result = generator(tmp_path, "render", "--site", "a")
    assert result.code == 2 and "more problem" not in result.err and "Traceback" not in result.err, result.text
    lines = result.err.removeprefix("error: ").splitlines()
    assert sorted(lines) == sorted([
        "sites/a/site.yaml:6: namespcae: unknown key (check the spelling; see schema/site.schema.json); "
        "did you mean 'namespace'?",
        "sites/a/site.yaml:5: replicas: Input should be a valid integer (found a string: 'many')",
        "sites/a/site.yaml:7: image.tag: Input should be a valid string (found an integer: 5)",
    ]), result.err


def test_render_and_validate_all_name_every_broken_site(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {"sites/a/site.yaml": THREE_PROBLEMS, "sites/b/site.yaml": MINIMAL_SITE + "namespace: llm-b\n",
                               "sites/c/site.yaml": MINIMAL_SITE + "replicas: -1\nnamespace: llm-c\n"})
    result = generator(tmp_path, "render", "--all")
    assert result.code == 2, result.text
    assert result.err.count("sites/a/site.yaml:") == 3 and "sites/c/site.yaml:5: replicas:" in result.err, result.err
    assert "sites/b/" not in result.err and not (tmp_path / "overlays").exists()

    validated = generator(tmp_path, "validate", "--all")  # nothing rendered: every site named, not the first
    assert validated.code == 1 and all(f"overlays/{s}: not rendered yet" in validated.err for s in "abc"), validated.text

    build_file_tree(tmp_path, {"sites/a/site.yaml": MINIMAL_SITE + "namespace: llm-a\n",
                               "sites/c/site.yaml": MINIMAL_SITE + "namespace: llm-c\n"})
    assert generator(tmp_path, "render", "--all").code == 0
    for name in ("a", "c"):  # two overlays broken by hand: validate names both
        (tmp_path / f"overlays/{name}/kustomization.yaml").write_text("resources: [missing.yaml]\n")
    validated = generator(tmp_path, "validate", "--all")
    assert validated.code == 1 and "overlays/a" in validated.err and "overlays/c" in validated.err, validated.text


def test_render_all_over_the_process_pool_names_every_broken_site(tmp_path: Path) -> None:
    """Eight sites or more are rendered by a pool of processes: their failures are gathered the same way."""
    sites = {f"sites/s{i}/site.yaml": MINIMAL_SITE + f"namespace: llm-s{i}\n" for i in range(9)}
    sites.update({"sites/s2/site.yaml": MINIMAL_SITE + "replicas: two\n", "sites/s7/site.yaml": "domian: x.org\n"})
    build_file_tree(tmp_path, sites)
    result = generator(tmp_path, "render", "--all")
    assert result.code == 2, result.text
    lines = result.err.removeprefix("error: ").splitlines()
    assert lines == ["sites/s2/site.yaml:5: replicas: Input should be a valid integer (found a string: 'two')",
                     "sites/s7/site.yaml:1: domian: unknown key (check the spelling; see schema/site.schema.json); "
                     "did you mean 'domain'?"], result.err
    assert not (tmp_path / "overlays").exists()


# --- no planted value in any output --------------------------------------------------------------------------

SCHEMA = json.loads((PROJECT / "schema/site.schema.json").read_text())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _positions(node: dict[str, Any], path: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[tuple[Any, ...], str]]:
    """Every place of the site file: (path, 'text') where text is accepted, (path, 'object') for a mapping."""
    node = _resolve(node)
    if depth > 8:
        return []
    found: list[tuple[tuple[Any, ...], str]] = []
    for option in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
        found += _positions(option, path, depth + 1)
    kind = node.get("type")
    if kind == "string" or "enum" in node or "const" in node:
        found.append((path, "text"))
    if kind == "object" or "properties" in node:
        found.append((path, "object"))
        for name, child in node.get("properties", {}).items():
            found += _positions(child, (*path, name), depth + 1)
        for child in [*node.get("patternProperties", {}).values(),
                      *([node["additionalProperties"]] if isinstance(node.get("additionalProperties"), dict) else [])]:
            found += _positions(child, (*path, "NAME"), depth + 1)
    if kind == "array" and isinstance(node.get("items"), dict):
        found += _positions(node["items"], (*path, 0), depth + 1)
    return found


def _place(path: tuple[Any, ...], value: Any) -> dict[str, Any]:  # noqa: ANN401
    site: dict[str, Any] = {"domain": "example.org"}
    node: Any = site
    for part, following in zip(path, (*path[1:], None)):
        child: Any = [] if isinstance(following, int) else {}
        if isinstance(node, list):
            node.append(child)
        else:
            node[part] = child
        node = child
    if isinstance(node, list):
        node.append(value)
    elif path:
        parent: Any = site
        for part in path[:-1]:
            parent = parent[part] if isinstance(parent, dict) else parent[0]
        if isinstance(parent, list):
            parent[0] = value
        else:
            parent[path[-1]] = value
    return site


POSITIONS = sorted(set(_positions(SCHEMA)), key=repr)
WRONG_TYPES = [[PLANTED], {PLANTED: PLANTED}, {"name": "OPENAI_API_KEY", "value": PLANTED}, [{"value": PLANTED}]]


def test_the_walk_reaches_every_text_field() -> None:
    texts = {p for p, kind in POSITIONS if kind == "text"}
    assert len(texts) > 120 and ("extraEnv", "NAME") in texts and ("models", 0, "apiKeySecret") in texts
    assert ("secrets", "filledLater", 0) in texts and ("keycloak", "url") in texts


def test_no_error_shows_a_planted_value_in_any_field(tmp_path: Path) -> None:
    """In every text field, every mapping and every mapping key of the schema, and in the wrong-typed shapes a
    pasted Kubernetes env list takes: the loader's message never holds the value nor a 6-character piece of it."""
    checked = 0
    file = tmp_path / "site.yaml"
    for path, kind in POSITIONS:
        values = [PLANTED, *WRONG_TYPES] if kind == "text" else WRONG_TYPES
        keyed = [(*path[:-1], PLANTED)] if path and path[-1] == "NAME" else []
        for where, value in [(path, v) for v in values] + [(k, "x") for k in keyed]:
            file.write_text(yaml.safe_dump(_place(tuple(p if p != "NAME" else "NAME_X" for p in where), value)))
            try:
                load_site_file(file, display="sites/a/site.yaml")
            except SiteError as exc:
                assert not _leaks(exc.message), (where, exc.message)
                checked += 1
    assert checked > 500


def _planted_everywhere() -> str:
    """One site file with the planted value in every text field at once (each problem is reported now)."""
    site: dict[str, Any] = {"domain": PLANTED, "hostname": PLANTED, "namespace": PLANTED,
                            "extraEnv": [{"name": "OPENAI_API_KEY", "value": PLANTED}],
                            "models": [{"name": PLANTED, "model": PLANTED, "apiKeySecret": PLANTED, "apiBase": PLANTED}],
                            "keycloak": {"url": PLANTED, "realm": PLANTED, "clientId": PLANTED, "adminUsers": [PLANTED]},
                            "image": {"repository": PLANTED, "tag": PLANTED},
                            "gitops": {"flux": {"url": f"https://user:{PLANTED}@git.example.org/x.git",
                                                "branch": PLANTED}},
                            "router": {"fallbacks": [{"model": PLANTED, "to": [PLANTED]}]},
                            "secrets": {"filledLater": [PLANTED]}, PLANTED: PLANTED}
    return yaml.safe_dump(site)


def test_no_command_prints_a_planted_value(tmp_path: Path) -> None:
    key = age_key()
    cert, _ = sealing_pair(tmp_path / "keys")
    root = tmp_path / "repo"
    build_file_tree(root, {"sites/a/site.yaml": _planted_everywhere(), "sites/b/site.yaml": MINIMAL_SITE,
                           ".sops.yaml": sops_rules([key.recipient])})
    env = {"SOPS_AGE_KEY": key.identity}
    runs = [("render", "--all"), ("render", "--site", "a", "--check"), ("validate", "--all"), ("status",),
            ("secrets", "init", "--site", "a"), ("secrets", "list", "--site", "a"), ("cert", "import", "--site", "a",
            str(cert)), ("site", "new", "c", "--domain", "c.example.org", "--from", "a"), ("diff", "--site", "a"),
            ("audit",)]
    outputs = []
    for args in runs:
        result = generator(root, *args, env=env)
        assert "Traceback" not in result.text, (args, result.text)
        outputs.append(result.text)
        assert not _leaks(result.text), (args, result.text)
    assert "sites/a/site.yaml" in "".join(outputs)


# --- unknown secret keys -------------------------------------------------------------------------------------

@pytest.fixture
def keyed_site(tmp_path: Path):
    key = age_key()
    cert, _ = sealing_pair(tmp_path / "keys")
    env = {"SOPS_AGE_KEY": key.identity}
    build_file_tree(tmp_path, {"sites/a/site.yaml": MINIMAL_SITE, ".sops.yaml": sops_rules([key.recipient])})
    (tmp_path / "sites/a/sealing-cert.pem").write_bytes(cert.read_bytes())
    assert generator(tmp_path, "secrets", "init", "--site", "a", env=env).code == 0
    assert generator(tmp_path, "secrets", "set", "--site", "a", "OPENAI_API_KEY", stdin=PLANTED + "\n", env=env).code == 0
    return tmp_path, env


def test_an_unknown_api_key_secret_is_refused_with_did_you_mean(keyed_site) -> None:  # noqa: ANN001
    root, env = keyed_site
    typo = MINIMAL_SITE + ("models:\n  - {name: gpt, model: openai/gpt-4o, apiKeySecret: OPENAI_KEY}\n"
                           "passThroughEndpoints:\n  - {path: /x, target: 'https://x.example.org', headers: "
                           "{Authorization: {secretKey: X_TOKEN}}}\n"
                           "extraEnv:\n  ORG: {secret: litellm-secrets, key: OPENAI_ORG}\n"
                           "  THEIRS: {secret: provider-keys, key: anything}\n")
    build_file_tree(root, {"sites/a/site.yaml": typo})
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if ".generator" not in p.parts)
    result = generator(root, "render", "--site", "a", env=env)
    assert result.code == 2, result.text
    lines = result.err.removeprefix("error: ").splitlines()
    assert lines[0].startswith("sites/a/site.yaml:6: models[0].apiKeySecret: OPENAI_KEY is not in "
                               "sites/a/secrets.sops.yaml; did you mean 'OPENAI_API_KEY'?"), result.err
    assert any(line.startswith("sites/a/site.yaml:8: passThroughEndpoints[0].headers.Authorization.secretKey: X_TOKEN")
               for line in lines), result.err
    assert any(line.startswith("sites/a/site.yaml:10: extraEnv.ORG.key: OPENAI_ORG") for line in lines), result.err
    assert len(lines) == 3 and "anything" not in result.err and "filledLater" in result.err  # another Secret's key: not ours
    assert not _leaks(result.text)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if ".generator" not in p.parts) == before

    later = typo.replace("apiKeySecret: OPENAI_KEY", "apiKeySecret: OPENAI_API_KEY") + \
        "secrets: {filledLater: [X_TOKEN, OPENAI_ORG]}\n"
    build_file_tree(root, {"sites/a/site.yaml": later})
    result = generator(root, "render", "--site", "a", env=env)
    assert result.code == 0, result.text


# --- a missing key file --------------------------------------------------------------------------------------

def test_a_missing_age_key_file_is_named_as_missing(keyed_site, tmp_path: Path) -> None:  # noqa: ANN001
    root, _ = keyed_site
    home = tmp_path / "empty-home"
    home.mkdir()
    cases = [({"HOME": str(home), "SOPS_AGE_KEY_FILE": "/nonexistent/keys.txt"},
              "SOPS_AGE_KEY_FILE names /nonexistent/keys.txt, which does not exist"),
             ({"HOME": str(home), "SOPS_AGE_KEY_FILE": str(home)}, f"SOPS_AGE_KEY_FILE names {home}, which is not a file"),
             ({"HOME": str(home)}, f"the key file {home}/.config/sops/age/keys.txt (sops's default) is missing")]
    for extra, words in cases:  # secrets set decrypts the file first
        result = generator(root, "secrets", "set", "--site", "a", "OTHER_KEY", stdin="value\n",
                           env={**extra, "SOPS_AGE_KEY": "", "XDG_CONFIG_HOME": ""})
        assert result.code != 0 and words in result.err and "Traceback" not in result.err, (extra, result.text)


def test_a_planted_value_as_a_duplicate_key_or_in_broken_yaml_stays_hidden(tmp_path: Path) -> None:
    for body in (f"extraEnv:\n  {PLANTED}: a\n  {PLANTED}: b\n", f"extraEnv: {{KEY: {PLANTED}: x}}\n",
                 f'extraEnv:\n  KEY: "{PLANTED}\n', f"extraEnv:\n\tKEY: {PLANTED}\n"):
        build_file_tree(tmp_path, {"sites/a/site.yaml": "domain: example.org\n" + body})
        result = generator(tmp_path, "render", "--site", "a")
        assert result.code == 2 and "sites/a/site.yaml:" in result.err and not _leaks(result.text), result.text


def test_a_planted_value_in_fields_that_accept_it_is_found_by_audit_and_never_printed(tmp_path: Path) -> None:
    """A value the site file accepts (a literal env value, a description) renders, and audit finds its shape in the
    site file and the rendered tree, naming file and line, never the value."""
    value = PLANTED + "x" * 12  # the length of a real project key: audit's sk- shape wants 32 characters or more
    build_file_tree(tmp_path, {"sites/v/site.yaml": MINIMAL_SITE + f"extraEnv: {{SOME_TOKEN: {value}}}\n"
                                                                   f"discovery: {{description: {value}}}\n"})
    outputs = [generator(tmp_path, *args) for args in (("render", "--all"), ("validate", "--all"), ("status",),
                                                       ("render", "--all", "--check"), ("audit",))]
    assert [run.code for run in outputs] == [0, 0, 0, 0, 1], [run.text for run in outputs]
    assert "sk- API key" in outputs[-1].text and "sites/v/site.yaml:5" in outputs[-1].text, outputs[-1].text
    for run in outputs:
        assert not _leaks(run.text), run.text


def test_a_planted_value_on_the_command_line_stays_hidden(tmp_path: Path) -> None:
    """Pasted where a name, a domain, a recipient or a URL belongs (an age identity instead of its recipient, a
    key for a key name): the refusal says what is wrong without repeating it."""
    build_file_tree(tmp_path, {"sites/a/site.yaml": MINIMAL_SITE})
    lower = PLANTED.lower()
    runs = [("site", "new", lower, "--domain", "x.example.org"), ("site", "new", "b", "--domain", PLANTED),
            ("site", "new", "b", "--domain", "b.example.org", "--age-recipient", PLANTED),
            ("site", "new", "b", "--domain", "b.example.org", "--git-url", f"https://u:{PLANTED}@git.example.org/x"),
            ("render", "--site", lower), ("render", "--site", PLANTED), ("secrets", "set", "--site", "a", PLANTED),
            ("init", str(tmp_path / "new"), "--git-url", "https://git.example.org/x.git", "--age-recipient", PLANTED),
            ("ci", "init", "--provider", "github", "--generator-git", f"{PLANTED} x"),
            ("ci", "init", "--provider", "github", "--generator-git", "https://git.example.org/g.git",
             "--generator-ref", PLANTED + "..x")]
    for args in runs:
        result = generator(tmp_path, *args, stdin="value\n")
        assert result.code == 2 and "Traceback" not in result.text, (args, result.text)
        assert not _leaks(result.text) and not _leaks(result.text.lower()), (args, result.text)
