"""The GitOps loop against the test control plane: a generated repository, committed and served over smart
HTTP, applied by the real Flux controllers, unsealed by the real sealed-secrets controller.

``GitOpsRepo`` is the operator's side (the generator's commands, git); ``Converged`` reads what the cluster
says about one site once Flux has applied a commit, from the API only.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from generator.secrets.keys import FINGERPRINT_KEY
from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitserver import GitServer
from tests.cluster.kube import condition, wait_for
from tests.helpers import build_file_tree, generator, sops_decrypt
from tests.keys import AgeKey, age_key, sops_rules

GIT = ["git", "-c", "user.email=cluster@example.com", "-c", "user.name=cluster-test", "-c", "init.defaultBranch=main"]
# Values bootstrap would make; here they are set by hand, as an operator without the services would.
BOOTSTRAP_VALUES = {"DATABASE_URL": "postgresql://litellm:pw-{site}@postgres.example.com:5432/litellm",
                    "CLIENT_SECRET": "client-secret-{site}-0123456789",
                    "S3_AWS_ACCESS_KEY_ID": "AKIATEST{site}", "S3_AWS_SECRET_ACCESS_KEY": "s3-secret-{site}-0123456789"}
CONVERGE_SECONDS = 240  # three chained Kustomizations, the migration Job, the rollout (scaled with the load)


def site_yaml(name: str, git_url: str, extra: str = "") -> str:
    """A site whose Flux and Argo CD sources are the local git server; ``extra`` adds settings."""
    return (f"domain: {name}.example.com\nnamespace: litellm-{name}\n"
            f"gitops:\n  flux: {{url: \"{git_url}\", interval: 10m}}\n  argocd: {{repoUrl: \"{git_url}\"}}\n{extra}")


class GitOpsRepo:
    """A GitOps repository the generator writes, committed to a bare repository the git server serves."""

    def __init__(self, workdir: Path, server: GitServer, cluster: ControlPlane, cert: bytes,
                 platform: str = "sealedSecrets: {install: false}\n"):
        self.root = workdir / "work"
        self.bare = server.root / "gitops.git"
        self.url = server.repo_url("gitops.git")
        self.cluster = cluster
        self.key: AgeKey = age_key()
        self.env = {"SOPS_AGE_KEY": self.key.identity}
        self.cert = workdir / "controller-cert.pem"
        self.cert.write_bytes(cert)
        # by default the case of a cluster where another team installed the sealed-secrets controller: the
        # harness runs its own
        build_file_tree(self.root, {".sops.yaml": sops_rules([self.key.recipient]), "platform.yaml": platform})
        subprocess.run([*GIT, "init", "-q", "--bare", str(self.bare)], check=True)
        subprocess.run([*GIT, "init", "-q", str(self.root)], check=True)
        subprocess.run([*GIT, "remote", "add", "origin", str(self.bare)], cwd=self.root, check=True)

    def gen(self, *args: str, stdin: str | None = None) -> str:
        result = generator(self.root, *args, stdin=stdin, env=self.env)
        assert result.code == 0, f"generator {' '.join(args)}: {result.text}"
        return result.out

    def add_site(self, name: str, text: str, cert: Path | None = None) -> None:
        """A site sealed for ``cert`` (default: the cluster's the repository was made for)."""
        build_file_tree(self.root, {f"sites/{name}/site.yaml": text})
        self.gen("cert", "import", "--site", name, str(cert or self.cert))
        self.gen("secrets", "init", "--site", name)
        for key, value in BOOTSTRAP_VALUES.items():
            self.gen("secrets", "set", "--site", name, key, stdin=value.format(site=name))

    def render(self) -> None:
        self.gen("render", "--all")
        self.gen("validate", "--all")

    def commit(self, message: str) -> str:
        subprocess.run([*GIT, "add", "-A"], cwd=self.root, check=True)
        subprocess.run([*GIT, "commit", "-qm", message], cwd=self.root, check=True)
        subprocess.run([*GIT, "push", "-q", "origin", "HEAD:main"], cwd=self.root, check=True, capture_output=True)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.root, check=True, capture_output=True,
                              text=True).stdout.strip()

    def sops_values(self, name: str) -> dict[str, str]:
        """The values sops holds for the Secret (not the sops metadata, not the HMAC key that never leaves sops)."""
        return {k: v for k, v in sops_decrypt(self.root / f"sites/{name}/secrets.sops.yaml", self.key.identity).items()
                if k not in ("sops", FINGERPRINT_KEY)}

    def sealed(self, name: str) -> dict:
        return yaml.safe_load((self.root / f"overlays/{name}/setup/sealed-secret.yaml").read_text())

    def apply_flux_entry(self, name: str) -> None:
        self.cluster.kubectl("apply", "--server-side", "--validate=strict", "-k",
                             str(self.root / f"deploy/flux/{name}"))

    def apply_fleet(self) -> None:
        """The one command that registers every site with Flux: the fleet's parent GitRepository + Kustomization."""
        self.cluster.kubectl("apply", "--server-side", "--validate=strict", "-k",
                             str(self.root / "deploy/fleet/flux-entry"))

    def reconcile_now(self, name: str) -> None:
        """What `flux reconcile source git` does: ask source-controller to fetch now, not at the next interval."""
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
        self.cluster.kubectl("-n", "flux-system", "annotate", "--overwrite", f"gitrepository/litellm-{name}",
                             f"reconcile.fluxcd.io/requestedAt={stamp}")


@dataclass
class Converged:
    """One site's state in the cluster once every stage applied ``revision``."""

    source: dict
    stages: dict[str, dict]
    job: dict
    deployment: dict
    secret: dict[str, str]
    namespace: dict
    pods: list[dict]


def stage_names(name: str) -> list[str]:
    return [f"litellm-{name}-setup", f"litellm-{name}-migrate", f"litellm-{name}"]


def wait_converged(cluster: ControlPlane, name: str, namespace: str, revision: str) -> Converged:
    api = cluster.api

    def explain() -> str:
        states = {ks: (condition(api.get("Kustomization", ks, "flux-system")) or {}).get("message")
                  for ks in stage_names(name)}
        source = (condition(api.get("GitRepository", f"litellm-{name}", "flux-system")) or {}).get("message")
        return (f"\nsource: {source}\nstages: {json.dumps(states, indent=1)}\n"
                f"kustomize-controller log:\n{cluster.logs('kustomize-controller', 3000)}")

    def applied(ks: str) -> dict | None:
        obj = api.get("Kustomization", ks, "flux-system")
        ready = condition(obj)
        done = (ready or {}).get("status") == "True" and revision in ((obj or {}).get("status") or {}).get(
            "lastAppliedRevision", "")
        return obj if done else None

    def fetched() -> dict | None:
        obj = api.get("GitRepository", f"litellm-{name}", "flux-system")
        artifact = ((obj or {}).get("status") or {}).get("artifact") or {}
        return obj if revision in artifact.get("revision", "") else None

    source = wait_for(fetched, 60, f"GitRepository litellm-{name} at {revision[:12]}", explain)
    stages = {ks: wait_for(lambda ks=ks: applied(ks), CONVERGE_SECONDS, f"Kustomization {ks} applied {revision[:12]}",
                           explain) for ks in stage_names(name)}
    job = api.get("Job", "litellm-migrate", namespace)
    deployment = api.get("Deployment", "litellm", namespace)
    secret_obj = wait_for(lambda: api.get("Secret", "litellm-secrets", namespace), 60, "the unsealed Secret",
                          lambda: cluster.logs("sealed-secrets-controller", 2000))
    secret = {k: base64.b64decode(v).decode() for k, v in (secret_obj.get("data") or {}).items()}
    pods = api.list("Pod", namespace, "app=litellm")
    return Converged(source, stages, job, deployment, secret, api.get("Namespace", namespace), pods)


HELD_OUT = os.environ.get("GENERATOR_CLUSTER_SITE")


def held_out_site(engine: str, url: str) -> tuple[str, str] | None:
    """The site file $GENERATOR_CLUSTER_SITE names, made ready for one engine's loop: (site name, site.yaml), in a
    namespace of its own (<namespace>-<engine>: test_apply.py applies the committed prod site in prod's, and each
    engine's loop runs the held-out site apart), its git URLs pointed at the local git server."""
    if not HELD_OUT:
        return None
    path = Path(HELD_OUT)
    site = yaml.safe_load(path.read_text())
    site["namespace"] = f"{site.get('namespace', 'litellm')}-{engine}"
    gitops = site.setdefault("gitops", {})
    if engine == "flux":
        gitops.setdefault("flux", {}).update({"url": url, "secretRef": None})
        gitops.setdefault("argocd", {})["repoUrl"] = url
    else:  # Argo CD alone, as on a stock Thinkube
        gitops["flux"] = {"enabled": False}
        gitops.setdefault("argocd", {}).update({"enabled": True, "repoUrl": url})
    return path.parent.name, yaml.safe_dump(site)
