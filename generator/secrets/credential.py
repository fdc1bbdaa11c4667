"""The engines' git credential: ``platform/git.sops.yaml``, sealed into the Secret each engine reads.

* Flux's GitRepository ``secretRef``: ``identity`` + ``known_hosts`` for ssh://, ``username`` + ``password``
  for https:// (source-controller's documented keys);
* Argo CD's repository Secret, labelled ``argocd.argoproj.io/secret-type: repository``, with ``type: git``
  and ``url`` in the clear and ``sshPrivateKey`` (or ``username`` + ``password``) sealed. Argo CD checks
  ssh host keys against its own ``argocd-ssh-known-hosts-cm``, not this Secret.

The sops file holds ``GIT_SSH_KEY`` and ``GIT_KNOWN_HOSTS``, or ``GIT_TOKEN`` (and ``GIT_USERNAME``). It is
sealed with the engines' cluster certificate, ``platform/sealing-cert.pem``, or the one every sealed site
shares. Zero churn as for the sites' secrets: an unchanged sops file and certificate keep the committed
ciphertext without the age key or kubeseal; a change reseals only the keys whose HMAC changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import UsageError
from generator.layout import Repo
from generator.platform import ARGO_SECRET, ENGINE_CERT, FLUX_SECRET, GIT_SOPS_FILE
from generator.secrets.cert import SealingCert, load_cert
from generator.secrets.keys import FINGERPRINT_KEY
from generator.secrets.sealing import SealTarget, zero_churn_seal
from generator.secrets.store import credential_store

SSH_KEY, KNOWN_HOSTS, TOKEN, USERNAME = "GIT_SSH_KEY", "GIT_KNOWN_HOSTS", "GIT_TOKEN", "GIT_USERNAME"
ARGO_SECRET_TYPE = "argocd.argoproj.io/secret-type"


@dataclass(frozen=True)
class Engine:
    name: str  # flux | argocd
    namespace: str
    url: str  # the repository the engine reads


def _secret_values(engine: Engine, values: dict[str, str], shown: str) -> dict[str, str]:
    """The keys of the engine's Secret, from the sops file's."""
    ssh = engine.url.startswith("ssh://")
    if ssh:
        if not values.get(SSH_KEY):
            raise UsageError(f"{shown}: {engine.name} reads {engine.url} over ssh and the file has no {SSH_KEY}; "
                             "run 'generator secrets git-credential --ssh-key FILE --known-hosts FILE'")
        if engine.name == "argocd":
            return {"sshPrivateKey": values[SSH_KEY]}
        if not values.get(KNOWN_HOSTS):
            raise UsageError(f"{shown}: Flux needs {KNOWN_HOSTS} for an ssh:// repository (ssh-keyscan output)")
        return {"identity": values[SSH_KEY], "known_hosts": values[KNOWN_HOSTS]}
    if not values.get(TOKEN):
        raise UsageError(f"{shown}: {engine.name} reads {engine.url} over https and the file has no {TOKEN}")
    return {"username": values.get(USERNAME) or "git", "password": values[TOKEN]}


def sealed_credential(repo: Repo, engine: Engine, cert: SealingCert, existing: Path, *, seal: bool) -> bytes:
    """The engine's credential as a SealedSecret file; NeedsSealing when ``seal`` is off and it is stale. Its
    template holds the url (Argo CD's, in the clear), so a new url (ssh:// for https://: other keys) reseals."""
    store = credential_store(repo)
    name = FLUX_SECRET if engine.name == "flux" else ARGO_SECRET
    target = SealTarget(name, engine.namespace, _template(engine, name), source=GIT_SOPS_FILE,
                        command="generator render --all",
                        remedy="set the credential with 'generator secrets git-credential'")
    return zero_churn_seal(store, target, cert, existing, repo.rel(existing), allowed=seal,
                           values=lambda decrypted: _secret_values(engine, decrypted, store.rel)).file


def _template(engine: Engine, name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": engine.namespace,
                                "labels": {"app.kubernetes.io/part-of": "litellm-gitops-platform"}}
    template: dict[str, Any] = {"metadata": metadata, "type": "Opaque"}
    if engine.name == "argocd":
        metadata["labels"][ARGO_SECRET_TYPE] = "repository"
        template["data"] = {"type": "git", "url": engine.url}  # plain: Argo CD matches the Secret by url
    return template


def engines_cert(repo: Repo, site_certs: dict[str, Path], own: str = ENGINE_CERT) -> SealingCert:
    """The certificate of the cluster the engines run in: ``own`` (platform/sealing-cert.pem, or one cluster's
    of several), else the one every sealed site (of that cluster) shares."""
    path = repo.root / own
    if path.is_file() or path.is_symlink():
        return load_cert(path, own, repo.root)
    loaded = {name: load_cert(path, f"sites/{name}/sealing-cert.pem", repo.root) for name, path in site_certs.items()}
    prints = {cert.fingerprint for cert in loaded.values()}
    if len(prints) != 1:
        raise UsageError(f"{GIT_SOPS_FILE}: the sites are sealed for {len(prints) or 'no'} different cluster "
                         f"certificate(s); put the certificate of the cluster where Flux and Argo CD run in {own}")
    return next(iter(loaded.values()))


def write_credential(repo: Repo, values: dict[str, str]) -> dict[str, str]:
    """Store the credential (one re-encryption); the HMAC key is added the first time."""
    from generator.secrets.keys import GENERATED

    store = credential_store(repo)
    store.path.parent.mkdir(exist_ok=True)
    current = store.read() if store.exists() else {}
    if FINGERPRINT_KEY not in current:
        values = {**values, FINGERPRINT_KEY: GENERATED[FINGERPRINT_KEY]()}
    stale = [k for k in (SSH_KEY, KNOWN_HOSTS, TOKEN, USERNAME) if k in current and k not in values]
    report = store.set_many(values)
    if stale:
        report.update({k: "kept" for k in stale})
    return {k: v for k, v in report.items() if k != FINGERPRINT_KEY}
