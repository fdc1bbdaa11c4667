"""A real Kubernetes control plane and the real GitOps controllers on 127.0.0.1, with no container runtime.

What runs, each the real binary built by ``scripts/install-cluster.sh`` (linked into ``.tools/cluster``):

* etcd (Debian) and kube-apiserver (RBAC, the default admission plugins, Pod Security among them);
* kube-controller-manager (Deployments, ReplicaSets, Jobs, namespaces, service accounts, garbage collection)
  and kube-scheduler;
* KWOK in place of the kubelet: it keeps a fake node alive and moves scheduled pods to Running and Ready,
  and Job pods to Succeeded. This is the only simulated part: no container ever runs;
* the sealed-secrets controller, which only knows the in-cluster configuration: it runs in a private mount
  namespace whose tmpfs ``/run`` holds a service-account token, the CA and its namespace;
* Flux's source-controller and kustomize-controller, with the admin kubeconfig;
* Argo CD's repo-server and application-controller, with Redis (``tests/cluster/argocd.py``).

``ControlPlane`` is a context manager: it starts everything on free ports, waits until each part answers
(bounded, with the part's log in the error), and on exit stops every process it started, in reverse order,
even when a start or a test failed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import urllib.request
from pathlib import Path

import yaml

from tests.cluster import argocd
from tests.cluster.kube import Api, Kubectl, condition, wait_for
from tests.cluster.pki import Pki, make_pki
from tests.helpers import PROJECT
from tests.servers import HOST, ServerStartError, _Server, _wait_until, free_ports

BINARIES = PROJECT / ".tools" / "cluster"
CRDS = BINARIES / "crds"
SETUP_HINT = "run scripts/install-cluster.sh (make cluster does)"
SEALED_SECRETS_NAMESPACE = "kube-system"
SEALED_SECRETS_SA = "sealed-secrets-controller"
NODE = "kwok-node-0"

# What Thinkube's own playbooks put in every cluster before an optional component is deployed
# (ansible/40_thinkube/core/infrastructure/k8s/12_configure_resource_policies.yaml): four PriorityClasses,
# thinkube-workload being the cluster default. The tests' platform has them too.
THINKUBE_PRIORITY_CLASSES = {"thinkube-critical": 1_000_000, "thinkube-platform": 100_000,
                             "thinkube-workload": 10_000, "thinkube-batch": 1_000}


def binary(name: str) -> Path:
    path = BINARIES / name
    if not os.access(path, os.X_OK):
        raise ServerStartError(f"{path} missing: {SETUP_HINT}")
    return path


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_ok(url: str) -> bool:
    ctx = _insecure() if url.startswith("https") else None
    with urllib.request.urlopen(url, timeout=3, context=ctx) as resp:
        return resp.status == 200


class Component(_Server):
    """One control-plane process, ready when ``health`` answers 200 (or ``ready()`` says so)."""

    def __init__(self, workdir: Path, name: str, argv: list[str], health: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 90):
        self.name = name
        super().__init__(workdir)
        self.argv, self.health, self.env, self.timeout = argv, health, env, timeout

    def ready(self) -> bool:
        return http_ok(self.health) if self.health else True

    def start(self) -> None:
        def _start() -> None:
            self._spawn(self.argv, env={**os.environ, **(self.env or {})})
            _wait_until(self.ready, self.timeout, self.name, self.log_path, self.proc, interval=0.1)
        self._timed_start(_start)


class ControlPlane:
    """``bare``: a stock Thinkube before our platform folder: no sealed-secrets CRD or controller, no Flux or
    Argo CD controllers (start_sealed_secrets() runs the real controller later, as the applied Deployment would).
    ``argocd``: off for a second cluster that only its own Flux applies (test_clusters_loop.py)."""

    def __init__(self, workdir: Path, *, bare: bool = False, argocd: bool = True):
        self.bare = bare
        self.with_argocd = argocd
        self.workdir = workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stack = contextlib.ExitStack()
        self.components: list[Component] = []
        self.pki: Pki | None = None
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        (self.etcd_port, self.etcd_peer, self.api_port, self.kcm_port, self.scheduler_port, self.kwok_port,
         self.ss_port, self.ss_metrics, self.src_storage, self.src_metrics, self.src_health, self.kus_metrics,
         self.kus_health) = free_ports(13)
        self.server = f"https://{HOST}:{self.api_port}"

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> "ControlPlane":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stack.close()

    def _run(self, component: Component) -> Component:
        self.components.append(component)
        self._stack.enter_context(component)
        return component

    def start(self) -> None:
        self.pki = make_pki(self.workdir / "pki")
        self._etcd()
        self._apiserver()
        self.api = Api(self.server, self.pki.ca, self.pki.cert("admin"), self.pki.key("admin"))
        self.kubectl = Kubectl(self.kubeconfig)
        self._platform()
        self._kube_controllers()
        self._kwok()
        if not self.bare:
            self._sealed_secrets()
            self._flux()
            if self.with_argocd:
                argocd.start(self)

    def start_sealed_secrets(self) -> None:
        self._sealed_secrets()

    # -- parts ---------------------------------------------------------------
    def _write_kubeconfig(self, path: Path, user: str) -> Path:
        assert self.pki is not None
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "local",
            "clusters": [{"name": "local", "cluster": {"server": self.server, "certificate-authority": str(self.pki.ca)}}],
            "users": [{"name": user, "user": {"client-certificate": str(self.pki.cert(user)),
                                              "client-key": str(self.pki.key(user))}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _etcd(self) -> None:
        data = self.workdir / "etcd-data"
        peer = f"http://{HOST}:{self.etcd_peer}"
        self._run(Component(self.workdir, "etcd", [
            str(binary("etcd")), "--name", "local", "--data-dir", str(data),
            "--listen-client-urls", f"http://{HOST}:{self.etcd_port}",
            "--advertise-client-urls", f"http://{HOST}:{self.etcd_port}",
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"local={peer}",
            "--unsafe-no-fsync",
        ], health=f"http://{HOST}:{self.etcd_port}/health"))

    def _apiserver(self) -> None:
        assert self.pki is not None
        pki = self.pki
        apiserver = Component(self.workdir, "kube-apiserver", [
            str(binary("kube-apiserver")),
            f"--etcd-servers=http://{HOST}:{self.etcd_port}",
            f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={self.api_port}",
            # the default reconciler refuses to publish a loopback address for the kubernetes Service
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.cert('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.directory / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki.key('service-account')}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",  # as kubeadm sets it: Pod Security decides
            "--profiling=false",
            # Streaming watch lists need etcd's RequestWatchProgress (etcd 3.5; Debian ships 3.4): with the
            # server's WatchList on, every such watch from KWOK's client-go ends in an error and its pods are
            # seen only at the next relist, seconds later. Off, clients list and watch as before 1.32.
            "--feature-gates=WatchList=false",
        ], timeout=120)
        self._write_kubeconfig(self.kubeconfig, "admin")
        api = Api(self.server, pki.ca, pki.cert("admin"), pki.key("admin"))
        apiserver.ready = lambda: api.raw("/readyz", timeout=3)[0] == 200  # type: ignore[method-assign]
        self._run(apiserver)

    def _platform(self) -> None:
        """The CRDs of every kind the tree uses, the engines' namespaces, and what Thinkube's core provides."""
        if not CRDS.is_dir():
            raise ServerStartError(f"{CRDS} missing: {SETUP_HINT}")
        crds = sorted(p for p in CRDS.glob("*.yaml") if not (self.bare and p.name.startswith("bitnami.com")))
        self.kubectl("apply", "--server-side", *(arg for p in crds for arg in ("-f", str(p))))
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
        classes = [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                    "value": value, "globalDefault": name == "thinkube-workload",
                    "description": "as Thinkube's 12_configure_resource_policies.yaml makes it"}
                   for name, value in THINKUBE_PRIORITY_CLASSES.items()]
        namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in ("flux-system", "argocd")]
        self.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all([*classes, *namespaces]))

    def _kube_controllers(self) -> None:
        assert self.pki is not None
        kcm = self._write_kubeconfig(self.workdir / "kcm.kubeconfig", "kube-controller-manager")
        self._run(Component(self.workdir, "kube-controller-manager", [
            str(binary("kube-controller-manager")), f"--kubeconfig={kcm}",
            f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            f"--bind-address={HOST}", f"--secure-port={self.kcm_port}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            f"--service-account-private-key-file={self.pki.key('service-account')}",
            f"--root-ca-file={self.pki.ca}", "--use-service-account-credentials=true",
            "--leader-elect=false", "--controllers=*",
            # KWOK's simulated node must not flap on a loaded machine: a NotReady blip marks its pods not
            # ready (the node lifecycle controller), and KWOK never readies them again, so a rollout hangs
            "--node-monitor-grace-period=5m",
        ], health=f"https://{HOST}:{self.kcm_port}/healthz"))
        sched = self._write_kubeconfig(self.workdir / "scheduler.kubeconfig", "kube-scheduler")
        self._run(Component(self.workdir, "kube-scheduler", [
            str(binary("kube-scheduler")), f"--kubeconfig={sched}",
            f"--authentication-kubeconfig={sched}", f"--authorization-kubeconfig={sched}",
            f"--bind-address={HOST}", f"--secure-port={self.scheduler_port}", "--leader-elect=false",
        ], health=f"https://{HOST}:{self.scheduler_port}/healthz"))

    def _kwok(self) -> None:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
                             "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64", "type": "kwok"}},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                           "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}
        self.kubectl("create", "-f", "-", stdin=yaml.safe_dump(node))
        kwok = self._run(Component(self.workdir, "kwok", [
            str(binary("kwok")), f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address={HOST}:{self.kwok_port}", f"--config={BINARIES / 'kwok-stages.yaml'}",
            "--node-lease-duration-seconds=40",  # a node Lease renewed like a kubelet's, not status heartbeats only
        ], health=f"http://{HOST}:{self.kwok_port}/healthz"))
        wait_for(lambda: (condition(self.api.get("Node", NODE)) or {}).get("status") == "True", 60,
                 "the KWOK node Ready", lambda: kwok.log_path.read_text()[-2000:])

    def _sealed_secrets(self) -> None:
        assert self.pki is not None
        ns, sa = SEALED_SECRETS_NAMESPACE, SEALED_SECRETS_SA
        if self.kubectl.run("-n", ns, "get", "serviceaccount", sa).returncode != 0:  # applied already, in a bare cluster
            self.kubectl("-n", ns, "create", "serviceaccount", sa)
        self.kubectl("create", "clusterrolebinding", "test-sealed-secrets", "--clusterrole=cluster-admin",
                     f"--serviceaccount={ns}:{sa}")
        token_dir = self.workdir / "sealed-secrets-sa"
        token_dir.mkdir(mode=0o700)
        (token_dir / "token").write_text(self.kubectl("-n", ns, "create", "token", sa, "--duration=24h").strip())
        shutil.copy(self.pki.ca, token_dir / "ca.crt")
        (token_dir / "namespace").write_text(ns)
        mounted = "/run/secrets/kubernetes.io/serviceaccount"
        script = (f"mount -t tmpfs -o mode=0755 none /run && mkdir -p {mounted} && cp {token_dir}/* {mounted}/ && "
                  f"exec {binary('sealed-secrets-controller')} --listen-addr={HOST}:{self.ss_port} "
                  f"--listen-metrics-addr={HOST}:{self.ss_metrics} --update-status=true")
        self.sealed_secrets_url = f"http://{HOST}:{self.ss_port}"
        self._run(Component(self.workdir, "sealed-secrets-controller",
                            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            health=f"{self.sealed_secrets_url}/healthz",
                            env={"KUBERNETES_SERVICE_HOST": HOST, "KUBERNETES_SERVICE_PORT": str(self.api_port),
                                 "POD_NAMESPACE": ns}))

    def _flux(self) -> None:
        env = {"KUBECONFIG": str(self.kubeconfig), "RUNTIME_NAMESPACE": "flux-system"}
        storage = self.workdir / "flux-storage"
        storage.mkdir()
        self._run(Component(self.workdir, "source-controller", [
            str(binary("source-controller")), f"--storage-path={storage}",
            f"--storage-addr={HOST}:{self.src_storage}", f"--storage-adv-addr={HOST}:{self.src_storage}",
            f"--metrics-addr={HOST}:{self.src_metrics}", f"--health-addr={HOST}:{self.src_health}",
            "--watch-all-namespaces=true", "--enable-leader-election=false",
        ], health=f"http://{HOST}:{self.src_health}/readyz", env=env))
        # The controller's default waits 30 s before it looks again at a Kustomization whose dependency is not
        # ready; the three stages of a site are chained, so the tests ask for 2 s (the only non-default flag).
        self._run(Component(self.workdir, "kustomize-controller", [
            str(binary("kustomize-controller")),
            f"--metrics-addr={HOST}:{self.kus_metrics}", f"--health-addr={HOST}:{self.kus_health}",
            "--watch-all-namespaces=true", "--enable-leader-election=false", "--requeue-dependency=2s",
        ], health=f"http://{HOST}:{self.kus_health}/readyz", env=env))

    # -- helpers for tests ---------------------------------------------------
    def sealing_cert(self) -> bytes:
        """The controller's public certificate, from its own endpoint (what ``kubeseal --fetch-cert`` reads)."""
        def fetch() -> bytes | None:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.sealed_secrets_url}/v1/cert.pem", timeout=5) as resp:
                    body = resp.read()
                    return body if b"BEGIN CERTIFICATE" in body else None
            return None
        return wait_for(fetch, 60, "the sealed-secrets controller's certificate")

    def logs(self, name: str, chars: int = 4000) -> str:
        for component in self.components:
            if component.name == name:
                with contextlib.suppress(OSError):
                    return component.log_path.read_text(errors="replace")[-chars:]
        return ""

