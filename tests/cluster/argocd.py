"""Argo CD's real controllers beside Flux, against the same API server: Redis, the repo-server and the
application-controller, each the process Argo CD's image runs, started from the ``argocd`` multicall binary
that ``scripts/install-cluster.sh`` builds (v3.6.2, ``tests/cluster/modules/argocd``).

Outside a cluster they need what the image and the install manifest provide, and nothing more:

* the ``argocd`` namespace's settings objects (``argocd-cm``, ``argocd-secret``, ... from the release's
  ``manifests/base/config``, labelled ``part-of: argocd`` as the settings informers select) and the ``default``
  AppProject, which argocd-server would create (it does not run here: no UI, API or webhooks);
* ``ARGOCD_FAKE_IN_CLUSTER=true``: the in-cluster destination (``https://kubernetes.default.svc``) is the admin
  kubeconfig; the image's ``/app/config/*`` paths are directories of the work directory;
* on the repo-server's ``PATH``: the image's ``git-verify-wrapper.sh`` (execed on every manifest generation),
  ``git``, and a ``kustomize`` that runs the pinned kubectl's embedded kustomize (``kustomize build DIR``).

Nothing here stands in for Argo CD's logic: fetch, build, diff, sync waves, hooks, health, prune, self-heal
and the resources finalizer are the real code, with Argo CD's default settings. A new commit is noticed as
argocd-server's git webhook would make it noticed: the tests annotate the Application for a refresh.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from generator.tools import require
from tests.servers import HOST, ValkeyServer, free_ports

if TYPE_CHECKING:
    from tests.cluster.controlplane import ControlPlane

NAMESPACE = "argocd"
FIELD_MANAGER = "argocd-controller"  # the manager Argo CD applies with (generator diff's default for Argo CD)

DEFAULT_PROJECT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
                   "metadata": {"name": "default", "namespace": NAMESPACE},
                   "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}


def _kustomize_shim(path: Path) -> Path:
    """The repo-server execs ``kustomize version`` and ``kustomize build DIR [flags]``."""
    kubectl = require("kubectl")
    path.write_text(f"""#!/bin/sh
case "$1" in
  version) "{kubectl}" version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p' ;;
  build) shift; exec "{kubectl}" kustomize "$@" ;;
  *) echo "kustomize (kubectl's): unsupported: $*" >&2; exit 1 ;;
esac
""")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def start(cp: ControlPlane) -> None:
    """Settings objects, then Redis, the repo-server and the application-controller, each waited for."""
    from tests.cluster.controlplane import BINARIES, Component, binary  # the harness imports this module

    config = BINARIES / "argocd-files"
    cp.kubectl("-n", NAMESPACE, "apply", "--server-side",
               *(arg for p in sorted((config / "config").glob("argocd-*.yaml")) for arg in ("-f", str(p))))
    cp.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(DEFAULT_PROJECT))

    home = cp.workdir / "argocd"
    dirs = {name: home / name for name in ("tls", "ssh", "gpg-keys", "gpg-source", "plugins", "tmp", "home", "bin")}
    for directory in dirs.values():
        directory.mkdir(parents=True, mode=0o700)
    for helper in (config / "bin").iterdir():  # copies: a concurrent install-cluster.sh replaces the originals
        shutil.copy2(helper, dirs["bin"] / helper.name)
    _kustomize_shim(dirs["bin"] / "kustomize")

    redis = cp._run(ValkeyServer(home / "redis"))
    repo_port, repo_metrics, controller_metrics = free_ports(3)
    common = {"ARGOCD_FAKE_IN_CLUSTER": "true", "KUBECONFIG": str(cp.kubeconfig),
              "ARGOCD_TLS_DATA_PATH": str(dirs["tls"]), "ARGOCD_SSH_DATA_PATH": str(dirs["ssh"]),
              "HOME": str(dirs["home"]), "TMPDIR": str(dirs["tmp"]), "GOMAXPROCS": "1"}
    cp._run(Component(cp.workdir, "argocd-repo-server", [
        str(binary("argocd-repo-server")), f"--address={HOST}", f"--port={repo_port}",
        f"--metrics-address={HOST}", f"--metrics-port={repo_metrics}", f"--redis={HOST}:{redis.port}",
        "--disable-tls", "--client-ca-path=", "--loglevel=info", "--logformat=text",
    ], health=f"http://{HOST}:{repo_metrics}/healthz?full=true", env={
        **common, "ARGOCD_GPG_ENABLED": "false", "ARGOCD_GNUPGHOME": str(dirs["gpg-keys"]),
        "ARGOCD_GPG_DATA_PATH": str(dirs["gpg-source"]), "ARGOCD_PLUGINSOCKFILEPATH": str(dirs["plugins"]),
        "PATH": f"{dirs['bin']}{os.pathsep}{os.environ['PATH']}"}))
    cp._run(Component(cp.workdir, "argocd-application-controller", [
        str(binary("argocd-application-controller")), f"--namespace={NAMESPACE}", f"--redis={HOST}:{redis.port}",
        f"--repo-server={HOST}:{repo_port}", "--repo-server-plaintext", f"--metrics-port={controller_metrics}",
        "--loglevel=info", "--logformat=text",
    ], health=f"http://{HOST}:{controller_metrics}/healthz", env={
        **common, "HOSTNAME": "argocd-application-controller-0"}))
