"""`generator secrets ...` and `generator cert ...`: typed functions returning an exit code."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO


from generator import proc
from generator.errors import ClusterError, GeneratorError, UsageError
from generator.output import Format, emit
from generator.layout import Repo
from generator.loader import load_site
from generator.inputs import read_input, safe_load_limited
from generator.secrets.cert import MAX_CERT_BYTES, check_validity, load_cert, parse_cert
from generator.secrets.keys import FILLED_BY_BOOTSTRAP, FINGERPRINT_KEY, is_internal
from generator.secrets.sealing import CERT_SHA, FINGERPRINTS, SEALED_FILE, SECRET_STAGE, SOPS_SHA, fingerprint
from generator.secrets.store import SecretsFile
from generator.tools import require
from generator.tools.sops import SopsError


def secrets_init(repo: Repo, site: str, out: TextIO = sys.stdout) -> int:
    model = load_site(repo, site)
    store = SecretsFile(repo, site)
    report = store.init()
    for key, status in sorted(report.items()):
        if not is_internal(key):
            print(f"{status:<9} {key}", file=out)
    present = set(report)
    missing = [k for k in model.secret_keys() if k not in present]
    for key in missing:
        how = "filled by 'generator bootstrap'" if key in FILLED_BY_BOOTSTRAP else f"set it: generator secrets set --site {site} {key}"
        print(f"missing   {key} ({how})", file=out)
    print(f"{store.rel}: {sum(1 for s in report.values() if s == 'created')} created, "
          f"{len(missing)} missing", file=out)
    return 0


def read_value(stream: TextIO) -> str:
    """A secret value from stdin (never argv): hidden prompt on a terminal, else the piped text."""
    if stream.isatty():
        import click

        return click.prompt("value", hide_input=True, confirmation_prompt=True, err=True)
    value = stream.read()
    return value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value


def secrets_set(repo: Repo, site: str, key: str, value: str, out: TextIO = sys.stdout) -> int:
    model = load_site(repo, site)
    status = SecretsFile(repo, site).set(key, value)
    print(f"{status:<9} {key}", file=out)
    if key not in model.secret_keys():
        print(f"warning: {key} is not referenced by sites/{site}/site.yaml; it is sealed but unused", file=sys.stderr)
    if status != "unchanged":
        print(f"next: generator render --site {site}", file=out)
    return 0


def secrets_rotate(repo: Repo, site: str, key: str, force: bool, out: TextIO = sys.stdout) -> int:
    load_site(repo, site)
    status = SecretsFile(repo, site).rotate(key, force=force)
    print(f"{status:<9} {key}", file=out)
    print(f"next: generator render --site {site}", file=out)
    return 0


def secrets_list(repo: Repo, site: str, out: TextIO = sys.stdout, output: Format = "table") -> int:
    """Key names and whether each is sealed and current. Needs the age key only when the file changed."""
    model = load_site(repo, site)
    store = SecretsFile(repo, site)
    if not store.exists():
        raise UsageError(f"{store.rel}: no such file; run 'generator secrets init --site {site}'")
    sealed = sealed_doc(repo, site)
    annotations = sealed.get("metadata", {}).get("annotations", {}) if sealed else {}
    sealed_keys = set(sealed.get("spec", {}).get("encryptedData", {})) if sealed else set()
    prints = json.loads(annotations.get(FINGERPRINTS, "{}"))
    same_cert = _cert_matches(repo, site, annotations)
    keyless_current = bool(sealed) and same_cert and annotations.get(SOPS_SHA) == store.digest()
    current: dict[str, str] = {}
    try:
        values = store.read()
        names = sorted(k for k in values if not is_internal(k))
        fp_key = values.get(FINGERPRINT_KEY, "")
        for key in names:
            sealed_now = bool(fp_key) and same_cert and prints.get(key) == fingerprint(fp_key, key, values[key])
            current[key] = "current" if keyless_current or sealed_now else "stale"
    except SopsError as exc:
        if not keyless_current:
            print(f"warning: {exc}; current/stale unknown", file=sys.stderr)
        names = sorted(sealed_keys)
        current = {k: "current" if keyless_current else "unknown" for k in names}
    required = model.secret_keys()
    rows = [{"key": key, "sops": key in current, "sealed": key in sealed_keys, "state": current.get(key, "missing"),
             "used": key in required} for key in sorted(set(names) | set(required))]

    def table() -> str:
        yes = {True: "yes", False: "no"}
        return "\n".join([f"{'KEY':<28} {'SOPS':<5} {'SEALED':<7} {'STATE':<8} USED", *(
            f"{r['key']:<28} {yes[r['sops']]:<5} {yes[r['sealed']]:<7} {r['state']:<8} {yes[r['used']]}" for r in rows)])

    emit(rows, output, table, out)
    return 0


def sealed_doc(repo: Repo, site: str) -> dict:
    """The committed SealedSecret of the site ({} when there is none), read through the input gate."""
    path = repo.root / "overlays" / site / SECRET_STAGE / SEALED_FILE
    if not path.is_file():
        return {}
    doc = safe_load_limited(read_input(path, repo.rel(path), root=repo.root), repo.rel(path))
    return doc if isinstance(doc, dict) else {}


def _cert_matches(repo: Repo, site: str, annotations: dict) -> bool:
    path = repo.site_dir(site) / "sealing-cert.pem"
    return path.is_file() and load_cert(path, repo.rel(path), repo.root).fingerprint == annotations.get(CERT_SHA)


def cert_import(repo: Repo, site: str, source: Path, out: TextIO = sys.stdout) -> int:
    """The source may live anywhere (it is the operator's download); it is read size-capped."""
    repo.check_site_name(site)
    return _install_cert(repo, site, read_input(source, str(source), limit=MAX_CERT_BYTES), str(source), out)


def cert_fetch(repo: Repo, site: str, controller_name: str, controller_namespace: str, out: TextIO = sys.stdout,
               *, kubeconfig: Path | None = None, context: str | None = None) -> int:
    """kubeseal --fetch-cert from the cluster of the kubeconfig context (kubectl's defaults when None)."""
    repo.check_site_name(site)
    where = [*(["--kubeconfig", str(kubeconfig)] if kubeconfig else []), *(["--context", context] if context else [])]
    result = proc.run([require("kubeseal"), *where, "--fetch-cert", "--controller-name", controller_name,
                       "--controller-namespace", controller_namespace], check=False, timeout=60)
    if result.returncode != 0:
        raise ClusterError(f"kubeseal --fetch-cert failed: {proc.tail(result.err_text, 2)}")
    if len(result.stdout) > MAX_CERT_BYTES:  # the input gate's limit, as for a certificate read from a file
        raise UsageError(f"the cluster's sealing certificate is larger than the limit of {MAX_CERT_BYTES} bytes "
                         f"({len(result.stdout)} bytes)")
    return _install_cert(repo, site, result.stdout, "the cluster", out)


def _install_cert(repo: Repo, site: str, data: bytes, shown: str, out: TextIO) -> int:
    target = repo.site_dir(site) / "sealing-cert.pem"
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".cert.", delete=False) as handle:
        handle.write(data)
    try:
        cert = parse_cert(data, Path(handle.name), shown)
        warning = check_validity(cert)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        if target.is_file() and target.read_bytes() == data:
            print(f"unchanged sites/{site}/sealing-cert.pem", file=out)
            return 0
        os.replace(handle.name, target)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
    print(f"updated   sites/{site}/sealing-cert.pem (sha256 {cert.fingerprint[:16]}…, valid until "
          f"{cert.not_after:%Y-%m-%d}); the next render reseals every key", file=out)
    return 0


def git_credential(repo: Repo, *, ssh_key: Path | None, known_hosts: Path | None, token: str | None,
                   username: str | None, out: TextIO = sys.stdout) -> int:
    """platform/git.sops.yaml: an ssh deploy key with the server's host keys, or an access token."""
    from generator.secrets.credential import KNOWN_HOSTS, SSH_KEY, TOKEN, USERNAME, write_credential

    if (ssh_key is None) == (token is None):
        raise UsageError("give --ssh-key FILE (with --known-hosts FILE) or --token-stdin, one of the two")
    if ssh_key is not None:
        if known_hosts is None:
            raise UsageError("--ssh-key needs --known-hosts FILE: Flux checks the server's host key (ssh-keyscan HOST)")
        key = read_input(ssh_key, str(ssh_key), limit=64 * 1024).decode("utf-8", "replace")
        if "PRIVATE KEY-----" not in key:
            raise UsageError(f"{ssh_key}: not a private key in PEM or OpenSSH form (-----BEGIN ... PRIVATE KEY-----)")
        hosts = read_input(known_hosts, str(known_hosts), limit=64 * 1024).decode("utf-8", "replace").strip()
        if not hosts or any(len(line.split()) < 3 for line in hosts.splitlines() if line and not line.startswith("#")):
            raise UsageError(f"{known_hosts}: expected known_hosts lines (HOST KEYTYPE KEY), as ssh-keyscan prints them")
        values = {SSH_KEY: key if key.endswith("\n") else key + "\n", KNOWN_HOSTS: hosts + "\n"}
    else:
        if not token:
            raise UsageError("--token-stdin: empty token on stdin; nothing written")
        values = {TOKEN: token, USERNAME: username or "git"}
    for key_name, status in sorted(write_credential(repo, values).items()):
        print(f"{status:<9} {key_name}", file=out)
    print("next: generator render --all (seals it into deploy/platform/ for each engine)", file=out)
    return 0
