"""README claim 5 of issue 22: `generator cert fetch` and `generator site new --fetch-cert` read the sealing
certificate from the cluster, as `kubeseal --fetch-cert` does: the real kubeseal asks the real API server, whose
service proxy forwards to the real sealed-secrets controller.

The API server proxies a Service only to endpoints that are pods with that address, and never to a loopback one
(EndpointSlice validation refuses 127.0.0.0/8). The controller of the test control plane listens on 127.0.0.1,
so the test gives its Service what a cluster would: an EndpointSlice whose endpoint is a Pod object carrying this
machine's own non-loopback address, where a relay passes the connection on to the controller unchanged.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from generator.tools import find
from tests.cluster.controlplane import ControlPlane
from tests.cluster.kube import wait_for
from tests.listener import ThreadedListener
from tests.helpers import MINIMAL_SITE, PROJECT, build_file_tree, fingerprint, generator
from tests.keys import age_key, sealing_pair, sops_rules

pytestmark = pytest.mark.cluster

PORT_NAME = "http"  # kubeseal proxies to the Service's first port, by name


def host_address() -> str:
    """This machine's own non-loopback IPv4 address (an endpoint the API server will proxy to): the source address
    of its route to a TEST-NET address (a UDP connect sends nothing), else the first global one `ip` lists."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if address and not address.startswith("127.") and address != "0.0.0.0":
        return address
    listed = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", listed.stdout)
    assert found, f"no non-loopback IPv4 address on this machine to stand for the controller's pod: {listed.stdout}"
    return found[0]


class Relay(ThreadedListener):
    """TCP from ``listen`` (any port) to ``upstream``, bytes unchanged, both ways."""

    def __init__(self, listen: str, upstream: tuple[str, int]) -> None:
        super().__init__(listen)
        self.upstream = upstream
        self.connections = 0

    def handle(self, client: socket.socket) -> None:
        self.connections += 1
        upstream = socket.create_connection(self.upstream, timeout=10)
        self.start_thread(self._pump, client, upstream)
        self.start_thread(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.5)
        try:
            while not self.stopping:
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@contextmanager
def controller_service(cluster: ControlPlane, namespace: str, name: str) -> Iterator[Relay]:
    """Service ``namespace/name`` whose one endpoint is the real sealed-secrets controller (see the module doc)."""
    address = host_address()
    controller = ("127.0.0.1", int(cluster.sealed_secrets_url.rsplit(":", 1)[1]))
    pod = f"{name}-pod"
    with Relay(address, controller) as relay:
        objects = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": pod, "namespace": namespace}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": namespace},
             # no scheduler runs pods of this name: the Pod only stands for the process the relay reaches
             "spec": {"schedulerName": "readme-claims-none", "serviceAccountName": pod,
                      "automountServiceAccountToken": False,
                      "containers": [{"name": "controller", "image": "registry.invalid/sealed-secrets:none"}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
             "spec": {"ports": [{"name": PORT_NAME, "port": 8080, "targetPort": 8080, "protocol": "TCP"}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": f"{name}-controller", "namespace": namespace,
                          "labels": {"kubernetes.io/service-name": name,
                                     "endpointslice.kubernetes.io/managed-by": "readme-claims-test"}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": [address], "conditions": {"ready": True},
                            "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace}}],
             "ports": [{"name": PORT_NAME, "port": relay.port, "protocol": "TCP"}]},
        ]
        if cluster.api.get("Namespace", namespace) is None:
            cluster.kubectl("create", "namespace", namespace)
        cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))
        try:
            cluster.kubectl("-n", namespace, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p",
                            yaml.safe_dump({"status": {"podIP": address, "podIPs": [{"ip": address}]}}))
            wait_for(lambda: (cluster.api.get("Pod", pod, namespace) or {}).get("status", {}).get("podIP") == address,
                     30, f"Pod {namespace}/{pod} carrying {address}")
            yield relay
        finally:
            for kind, obj in (("endpointslice", f"{name}-controller"), ("service", name), ("pod", pod),
                              ("serviceaccount", pod)):
                cluster.kubectl.run("-n", namespace, "delete", kind, obj, "--ignore-not-found", "--wait=false")


def _sha256_der(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def test_cert_fetch_reads_the_controllers_certificate_through_the_api_server(cluster: ControlPlane,
                                                                             tmp_path: Path) -> None:
    controller_cert = cluster.sealing_cert()  # straight from the controller: what the fetch must bring back
    root = tmp_path / "repo"
    old, _ = sealing_pair(tmp_path / "keys")  # the site starts sealed for another certificate
    build_file_tree(root, {"sites/demo/site.yaml": MINIMAL_SITE, "sites/demo/sealing-cert.pem": old.read_text()})
    target = root / "sites/demo/sealing-cert.pem"
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    namespace, name = "readme-claims-sealing", "sealing-controller"

    with controller_service(cluster, namespace, name) as relay:
        # a controller that is not there: one line, nothing written
        before = target.read_bytes()
        absent = generator(root, "cert", "fetch", "--site", "demo", "--controller-name", "no-such-controller",
                           "--controller-namespace", namespace, env=env)
        assert absent.code == 3, absent.text  # errors.ExitCode.UNREACHABLE: the cluster refused the request
        lines = absent.err.strip().splitlines()
        assert lines[0].startswith("error: kubeseal --fetch-cert failed: "), absent.err
        assert "Traceback" not in absent.text and target.read_bytes() == before

        fetched = generator(root, "cert", "fetch", "--site", "demo", "--controller-name", name,
                            "--controller-namespace", namespace, env=env)
        assert fetched.code == 0, fetched.text
        assert relay.connections >= 1  # the API server did go to the controller for it
        assert target.read_bytes() == controller_cert
        sha = _sha256_der(controller_cert)
        assert fetched.out.startswith(f"updated   sites/demo/sealing-cert.pem (sha256 {sha[:16]}…, valid until "), fetched.out
        assert fetched.out.rstrip().endswith("the next render reseals every key"), fetched.out

        again = generator(root, "cert", "fetch", "--site", "demo", "--controller-name", name,
                          "--controller-namespace", namespace, env=env)
        assert again.code == 0 and again.out == "unchanged sites/demo/sealing-cert.pem\n", again.text


def test_site_new_fetch_cert_seals_the_new_site_for_this_clusters_controller(cluster: ControlPlane,
                                                                            tmp_path: Path) -> None:
    """--fetch-cert asks the controller its options name (their defaults are the platform layer's Service, checked
    below; the session's platform layer holds that name, under Argo CD's and Flux's management, so the relay stands
    under a name of its own); what the new site seals, the controller's own private key opens."""
    controller_cert = cluster.sealing_cert()
    root, key = tmp_path / "repo", age_key()
    (root / "sites").mkdir(parents=True)  # a repository with no site yet
    build_file_tree(root, {".sops.yaml": sops_rules([key.recipient]), "platform.yaml": "gitCredential: external\n"})
    env = {"KUBECONFIG": str(cluster.kubeconfig), "SOPS_AGE_KEY": key.identity, "SOPS_AGE_KEY_FILE": "/nonexistent"}

    with controller_service(cluster, "readme-claims-sealing", "sealing-for-site-new") as relay:
        before = fingerprint(root)
        made = generator(root, "site", "new", "lab", "--domain", "lab.example.org", "--age-recipient", key.recipient,
                         "--git-url", "ssh://git@git.example.org/platform/lab-gitops.git",
                         "--fetch-cert", "--controller-name", "sealing-for-site-new", "--controller-namespace",
                         "readme-claims-sealing", env=env)
        assert made.code == 0, made.text
        assert relay.connections >= 1
    out = made.out.splitlines()
    assert out[0] == "created   sites/lab/site.yaml", made.out
    assert out[1].startswith(f"updated   sites/lab/sealing-cert.pem (sha256 {_sha256_der(controller_cert)[:16]}…"), made.out
    assert (root / "sites/lab/sealing-cert.pem").read_bytes() == controller_cert
    assert fingerprint(root) != before and (root / "overlays/lab/setup/sealed-secret.yaml").is_file()

    # The controller's private key (its Secret in kube-system) opens what the new site sealed.
    keys = cluster.api.list("Secret", "kube-system", "sealedsecrets.bitnami.com/sealed-secrets-key=active")
    assert keys, "the controller has no active key"
    private = tmp_path / "controller.key"
    private.write_bytes(b"".join(base64.b64decode(k["data"]["tls.key"]) for k in keys))
    private.chmod(0o600)
    sealed = (root / "overlays/lab/setup/sealed-secret.yaml").read_bytes()
    opened = subprocess.run([str(find("kubeseal")), "--recovery-unseal", "--recovery-private-key", str(private),
                             "--format", "json"], input=sealed, capture_output=True, timeout=60)
    assert opened.returncode == 0, opened.stderr.decode()
    secret = json.loads(opened.stdout)
    assert {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "ADMIN_PASSWORD"} <= set(secret["data"]), secret["data"].keys()



def test_site_new_fetches_from_the_platform_layers_controller_by_default() -> None:
    """The defaults of --controller-name/--controller-namespace are the Service the platform layer installs."""
    from generator.cli.sites import site_new

    defaults = {p.name: p.default for p in site_new.params}
    service = next(d for d in yaml.safe_load_all((PROJECT / "deploy/platform/sealed-secrets/controller.yaml").read_text())
                   if d and d["kind"] == "Service")
    assert (defaults["controller_name"], defaults["controller_namespace"]) == (
        service["metadata"]["name"], service["metadata"]["namespace"]) == ("sealed-secrets-controller", "kube-system")
