"""The overlay's Secret: a SealedSecret (or, for Flux-only sites, a sops-encrypted Secret).

Zero churn. kubeseal produces new ciphertext on every run, so the generator reuses what it
sealed before whenever it can prove the value is unchanged:

* Keyless fast path: the SealedSecret records the sha256 of the sops file's *encrypted* bytes
  and of the public certificate. When both match, nothing changed: the committed ciphertext is
  reused as is, and neither the age key nor kubeseal is needed.
* Per key: otherwise the sops file is decrypted and each value's HMAC-SHA256, keyed with a
  random 256-bit key that lives only inside the sops file (``_fingerprint_key``), is compared
  with the HMAC recorded in the SealedSecret. Only changed keys are resealed. A new
  certificate or namespace reseals everything. The HMACs reveal nothing about a value without
  the key, unlike a plain hash, which would let anyone test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.errors import SiteError, UsageError
from generator.inputs import read_input, safe_load_limited
from generator.layout import Repo
from generator.model import Site
from generator.render.common import SECRET_NAME, obj, yaml_file
from generator.render.site import SETUP as SECRET_STAGE  # the overlay stage that holds the Secret
from generator.secrets.cert import SealingCert, check_validity, load_cert
from generator.secrets.keys import FINGERPRINT_KEY, is_internal
from generator.secrets.store import SecretsFile
from generator.tools import kubeseal, sops

SEALED_FILE = "sealed-secret.yaml"
SOPS_SECRET_FILE = "secret.sops.yaml"
PREFIX = "litellm-gitops.io/"
SEALED_FOR, CERT_SHA, SOPS_SHA, FINGERPRINTS, RECIPIENTS = (
    f"{PREFIX}sealed-for", f"{PREFIX}cert-sha256", f"{PREFIX}sops-sha256", f"{PREFIX}fingerprints", f"{PREFIX}recipients")


@dataclass
class SecretOutcome:
    files: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    resealed: list[str] = field(default_factory=list)  # keys sealed anew by this render
    reused: list[str] = field(default_factory=list)
    stale: str | None = None  # set instead of sealing when sealing is not allowed (check, dry run)


def fingerprint(fp_key: str, key: str, value: str) -> str:
    return hmac.new(bytes.fromhex(fp_key), f"{key}\0{value}".encode(), hashlib.sha256).hexdigest()


class NeedsSealing(Exception):
    """The committed file is stale and this run may not seal (a check, a dry run): the message says which."""

    def __init__(self, shown: str, store: SecretsFile) -> None:
        super().__init__(f"{shown} is out of date with {store.rel} (or the certificate)")


@dataclass(frozen=True)
class SealTarget:
    """A SealedSecret kept with zero churn: the Secret it unseals into and what its file's header names."""

    name: str
    namespace: str
    template: dict[str, Any]  # spec.template: the Secret's metadata, type and any plain data
    source: str  # the sops file it is sealed from
    command: str  # the command that writes it
    remedy: str  # what to run when the sops file has no fingerprint key

    @property
    def sealed_for(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Sealing:
    file: bytes
    resealed: list[str] = field(default_factory=list)  # keys sealed anew by this run
    reused: list[str] = field(default_factory=list)  # keys whose committed ciphertext was kept


def zero_churn_seal(store: SecretsFile, target: SealTarget, cert: SealingCert, existing: Path, shown: str, *,
                    allowed: bool, values: Callable[[dict[str, str]], dict[str, str]]) -> Sealing:
    """The target's SealedSecret file, with zero churn (the module's docstring): ``existing`` is the committed
    one (``shown`` as the user knows it); ``values`` picks the Secret's keys from the decrypted sops file. With
    ``allowed`` off, a stale file raises NeedsSealing instead of being sealed."""
    previous = load_committed(existing)
    annotations = previous.get("metadata", {}).get("annotations", {}) if previous else {}
    old_data: dict[str, str] = dict(previous.get("spec", {}).get("encryptedData", {})) if previous else {}
    sops_sha = store.digest()
    same_target = annotations.get(SEALED_FOR) == target.sealed_for and annotations.get(CERT_SHA) == cert.fingerprint
    if previous and same_target and annotations.get(SOPS_SHA) == sops_sha \
            and previous.get("spec", {}).get("template") == target.template:
        prints = json.loads(annotations.get(FINGERPRINTS, "{}"))
        return Sealing(_sealed_file(target, old_data, prints, cert.fingerprint, sops_sha), reused=sorted(old_data))
    if not allowed:
        raise NeedsSealing(shown, store)
    decrypted = store.read()
    fp_key = decrypted.get(FINGERPRINT_KEY)
    if not fp_key:
        raise UsageError(f"{store.rel}: has no {FINGERPRINT_KEY}; {target.remedy}")
    wanted = values(decrypted)
    new_prints = {k: fingerprint(fp_key, k, v) for k, v in wanted.items()}
    old_prints = json.loads(annotations.get(FINGERPRINTS, "{}")) if same_target else {}
    changed = sorted(k for k in wanted if old_prints.get(k) != new_prints[k] or k not in old_data)
    fresh = kubeseal.seal({k: wanted[k] for k in changed}, name=target.name, namespace=target.namespace, cert=cert.path)
    data = {k: fresh[k] if k in fresh else old_data[k] for k in sorted(wanted)}
    return Sealing(_sealed_file(target, data, new_prints, cert.fingerprint, sops_sha), changed,
                   sorted(set(wanted) - set(changed)))


def _sealed_file(target: SealTarget, data: dict[str, str], prints: dict[str, str], cert_sha: str, sops_sha: str) -> bytes:
    doc = obj("bitnami.com/v1alpha1", "SealedSecret", target.name, namespace=target.namespace, annotations={
        SEALED_FOR: target.sealed_for,
        CERT_SHA: cert_sha,
        SOPS_SHA: sops_sha,
        FINGERPRINTS: json.dumps(dict(sorted(prints.items())), separators=(",", ":")),
    })
    doc["spec"] = {"encryptedData": dict(sorted(data.items())), "template": target.template}
    return yaml_file(target.source, target.command, doc)


def overlay_secret(repo: Repo, name: str, site: Site, *, seal: bool = True) -> SecretOutcome:
    """The overlay's secret file. With ``seal=False`` nothing is decrypted or sealed: a stale secret
    is reported in ``stale`` and the committed file is kept."""
    store = SecretsFile(repo, name)
    outcome = SecretOutcome()
    if not store.exists():
        outcome.warnings.append(f"{store.rel}: missing, so the overlay only references {SECRET_NAME}; "
                                f"run 'generator secrets init --site {name}'")
        return outcome
    target = SOPS_SECRET_FILE if site.secrets.mode == "sops" else SEALED_FILE
    shown = f"overlays/{name}/{SECRET_STAGE}/{target}"
    existing_path = repo.root / shown
    try:
        if site.secrets.mode == "sops":
            outcome.files[target] = _sops_secret(store, site, existing_path, outcome, seal, shown)
        else:
            outcome.files[target] = _sealed_secret(repo, store, name, site, existing_path, outcome, seal, shown)
    except NeedsSealing as exc:
        outcome.stale = str(exc)
        if existing_path.is_file():
            outcome.files[target] = committed_bytes(existing_path)
    return outcome


def _sealed_secret(repo: Repo, store: SecretsFile, name: str, site: Site, existing_path: Path,
                   outcome: SecretOutcome, allowed: bool, shown: str) -> bytes:
    cert = load_cert(repo.site_dir(name) / "sealing-cert.pem", f"sites/{name}/sealing-cert.pem", repo.root,
                     remember=allowed)
    warning = check_validity(cert)
    if warning:
        outcome.warnings.append(warning)
    target = SealTarget(SECRET_NAME, site.namespace, {"metadata": {"name": SECRET_NAME, "namespace": site.namespace,
                                                                   "labels": {"app": "litellm"}}, "type": "Opaque"},
                        source=store.rel, command=f"generator render --site {name}",
                        remedy=f"run 'generator secrets init --site {name}' to add it")
    done = zero_churn_seal(store, target, cert, existing_path, shown, allowed=allowed,
                           values=lambda decrypted: {k: v for k, v in decrypted.items() if not is_internal(k)})
    outcome.resealed, outcome.reused = done.resealed, done.reused
    return done.file


def _sops_secret(store: SecretsFile, site: Site, existing_path: Path, outcome: SecretOutcome, allowed: bool,
                 shown: str) -> bytes:
    """Flux-native: a Secret whose data is sops-encrypted for the cluster's age recipients."""
    recipients = sorted(site.secrets.flux_recipients)
    sops_sha = store.digest()
    previous = load_committed(existing_path)
    annotations = previous.get("metadata", {}).get("annotations", {}) if previous else {}
    if previous and annotations.get(SOPS_SHA) == sops_sha and annotations.get(RECIPIENTS) == ",".join(recipients) \
            and previous.get("metadata", {}).get("namespace") == site.namespace:
        return committed_bytes(existing_path)
    if not allowed:
        raise NeedsSealing(shown, store)
    values = {k: v for k, v in store.read().items() if not is_internal(k)}
    secret = obj("v1", "Secret", SECRET_NAME, namespace=site.namespace, labels={"app": "litellm"},
                 annotations={SOPS_SHA: sops_sha, RECIPIENTS: ",".join(recipients)})
    secret["type"] = "Opaque"
    secret["stringData"] = dict(sorted(values.items()))
    plain = yaml.safe_dump(secret, sort_keys=False).encode()
    encrypted = sops.encrypt_document(plain, recipients, r"^(data|stringData)$", store.rel, store.repo.root)
    outcome.resealed = sorted(values)
    header = (f"# Generated from {store.rel} by the LiteLLM GitOps generator. Do not edit.\n"
              f"# sops-encrypted for the cluster's age key; Flux decrypts it (spec.decryption).\n").encode()
    return header + encrypted


def committed_bytes(path: Path) -> bytes:
    """The committed file's bytes as ``load_committed`` read them (within a render, not read again); a file the
    input gate refuses is kept as it is, for the plan to replace."""
    try:
        return read_input(path, str(path))
    except SiteError:
        return path.read_bytes()


def load_committed(path: Path) -> dict[str, Any] | None:
    """The committed secret file, if any: generated, but a pull request may have made it hostile."""
    if not path.is_file():
        return None
    try:
        doc = safe_load_limited(read_input(path, str(path)), str(path))
    except SiteError:
        return None
    return doc if isinstance(doc, dict) else None
