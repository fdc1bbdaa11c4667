"""Issue 24: the first sync takes over the LiteLLM Thinkube's playbooks deployed, on the real control plane.

The originals are made as the playbooks make them (tests/thinkube_original.py): client-side ``kubectl apply``,
so another field manager owns them, with their own labels and the 5Gi PVC (bound to a PersistentVolume, so the
original pod runs). ``generator adopt`` reads them live (read-only), the operator runs the ``before`` commands
it prints (the Secret's takeover annotation, the old Deployment orphaned), renders, commits, and Flux applies:
the same objects are taken over (same UIDs, no duplicate), the Secret unseals to the original values byte for
byte, the tree's Deployment becomes Available and its pods replace the original's, the
PVC and its volume are untouched and in no engine's inventory; the ``after`` commands remove what was replaced.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
import yaml

from generator.adopt.mapping import SETTINGS_KEYS
from tests import thinkube_original as original
from tests.cluster.controlplane import ControlPlane
from tests.cluster.gitops import GitOpsRepo, stage_names, wait_converged
from tests.cluster.gitserver import GitServer
from tests.cluster.kube import condition, wait_for
from tests.helpers import generator

pytestmark = pytest.mark.cluster

SITE, NAMESPACE, DOMAIN = "adopted", "litellm-adopt", "home.example.net"


def _commands(output: str, when: str) -> list[list[str]]:
    """The commands adopt prints under its ``before`` or ``after`` lines, as argv."""
    lines = output.splitlines()
    found = []
    for index, line in enumerate(lines[:-1]):
        follow = lines[index + 1]
        if line.startswith(f"{when:<9} ") and follow.startswith("          kubectl "):
            found.append(follow.split()[1:])
    return found


def _uids(cluster: ControlPlane) -> dict[str, str]:
    api = cluster.api
    kinds = (("Secret", "litellm-secrets"), ("Service", "litellm"),
             ("HTTPRoute", "litellm-route"), ("ConfigMap", "thinkube-service-config"))
    return {f"{kind}/{name}": api.get(kind, name, NAMESPACE)["metadata"]["uid"] for kind, name in kinds}


def _pvc(cluster: ControlPlane) -> dict:
    status, body = cluster.api.raw(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/litellm-data-pvc")
    assert status == 200, body[:300]
    return json.loads(body)


@pytest.fixture(scope="module")
def takeover(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("adopt")
    (work / "served").mkdir()
    values = original.values()
    objs = original.objects(DOMAIN, values, namespace=NAMESPACE)
    # what the PVC binds to on a real node; the original pod mounts it
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{NAMESPACE}-data"},
              "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                       "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(work / "volume")},
                       "claimRef": {"namespace": NAMESPACE, "name": "litellm-data-pvc"}}}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(volume))
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(objs[0]))  # the namespace first, as the playbook does
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objs[1:]))  # client-side: kubectl's own manager
    wait_for(lambda: condition(cluster.api.get("Deployment", "litellm", NAMESPACE), "Available"), 120,
             "the original Deployment Available")
    before = _uids(cluster)
    old_deployment = cluster.api.get("Deployment", "litellm", NAMESPACE)["metadata"]["uid"]
    pvc_before = _pvc(cluster)
    with GitServer(work / "served") as server:
        repo = GitOpsRepo(work, server, cluster, cluster.sealing_cert())
        (repo.root / "sites").mkdir()  # a new GitOps repository: the adopted site is its first
        adopted = generator(repo.root, "adopt", "--site", SITE, "--kubeconfig", str(cluster.kubeconfig),
                            "--namespace", NAMESPACE, "--cert", str(repo.cert), env=repo.env)
        assert adopted.code in (0, 1), adopted.text
        print(adopted.out)
        site_file = repo.root / f"sites/{SITE}/site.yaml"
        site = yaml.safe_load(site_file.read_text())
        site["gitops"] = {"flux": {"url": repo.url, "interval": "10m"}, "argocd": {"repoUrl": repo.url}}
        text = site_file.read_text()
        site_file.write_text(text[:text.index("gitops:")] + yaml.safe_dump({"gitops": site["gitops"]}))
        for argv in _commands(adopted.out, "before"):
            cluster.kubectl(*argv)
        repo.render()
        revision = repo.commit("adopt the playbooks' LiteLLM")
        repo.apply_flux_entry(SITE)
        state = wait_converged(cluster, SITE, NAMESPACE, revision)
        yield {"repo": repo, "adopted": adopted, "values": values, "state": state, "before": before,
               "pvc": pvc_before, "cluster": cluster, "old_deployment": old_deployment}


def test_adopt_reads_the_live_originals_and_lists_what_it_replaces(takeover: dict) -> None:
    out = takeover["adopted"].out
    assert f"kubectl -n {NAMESPACE} annotate secret litellm-secrets sealedsecrets.bitnami.com/managed=true" in out
    assert f"kubectl -n {NAMESPACE} delete configmap litellm-config" in out
    assert f"kubectl -n {NAMESPACE} delete secret {NAMESPACE}-tls-secret" in out
    assert f"PersistentVolumeClaim {NAMESPACE}/litellm-data-pvc (5Gi)" in out
    # the old Deployment's env reads from the Secret where the tree sets values: it is orphaned, not merged
    assert f"kubectl -n {NAMESPACE} delete deployment litellm --cascade=orphan" in out, out
    assert re.search(r"left .*model test-model: reads os.environ/OPENAI_API_KEY", out), out
    for value in takeover["values"].values():
        assert len(value) < 16 or value not in takeover["adopted"].text


def test_the_same_objects_are_taken_over_with_no_duplicate(takeover: dict) -> None:
    cluster: ControlPlane = takeover["cluster"]
    assert _uids(cluster) == takeover["before"], "an object was replaced instead of taken over"
    # the Deployment is the tree's (the old one was orphaned): its ReplicaSet took the old pods' place
    assert takeover["state"].deployment["metadata"]["uid"] != takeover["old_deployment"]
    api = cluster.api
    assert [d["metadata"]["name"] for d in api.list("Deployment", NAMESPACE)] == ["litellm"]
    assert [s["metadata"]["name"] for s in api.list("Service", NAMESPACE)] == ["litellm"]
    status, body = api.raw(f"/apis/gateway.networking.k8s.io/v1/namespaces/{NAMESPACE}/httproutes")
    assert [r["metadata"]["name"] for r in json.loads(body)["items"]] == ["litellm-route"]
    discovery = api.list("ConfigMap", NAMESPACE, "thinkube.io/service-name=litellm")
    assert [c["metadata"]["name"] for c in discovery] == ["thinkube-service-config"]
    assert takeover["values"]["LITELLM_MASTER_KEY"] not in discovery[0]["data"]["service.yaml"]


def test_the_secret_unseals_to_the_original_values_byte_for_byte(takeover: dict) -> None:
    cluster: ControlPlane = takeover["cluster"]
    secret = cluster.api.get("Secret", "litellm-secrets", NAMESPACE)
    owners = [o["kind"] for o in secret["metadata"].get("ownerReferences", [])]
    assert owners == ["SealedSecret"], "the sealed-secrets controller took the Secret over"
    values = takeover["values"]
    secrets = {k: v for k, v in values.items() if k not in SETTINGS_KEYS}  # settings moved to the site file
    assert {k: base64.b64decode(v) for k, v in secret["data"].items()} == {k: v.encode() for k, v in secrets.items()}
    stored = {k: v for k, v in takeover["repo"].sops_values(SITE).items() if not k.startswith("_")}
    assert takeover["state"].secret == stored == secrets
    # the settings the playbooks kept in the Secret reach the pod with the same bytes, as plain env
    env = {e["name"]: e.get("value") for e in takeover["state"].deployment["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["UI_USERNAME"] == values["ADMIN_USERNAME"]
    assert all(env[k] == values[k] for k in ("S3_BUCKET_NAME", "S3_REGION_NAME", "S3_ENDPOINT_URL"))


def test_the_deployment_is_available_with_the_trees_pod(takeover: dict) -> None:
    deployment = takeover["state"].deployment
    assert condition(deployment, "Available")["status"] == "True", deployment.get("status")
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-postgres", "wait-for-s3"], pod["initContainers"]
    container = pod["containers"][0]
    assert "command" not in container and container["image"].startswith(f"registry.{DOMAIN}/library/litellm-non_root:")
    assert [v["name"] for v in pod["volumes"]] == ["config", "tmp"], "the playbooks' data volume is gone from the pod"
    api = takeover["cluster"].api
    wait_for(lambda: all(p["spec"]["containers"][0]["image"] == container["image"]
                         for p in api.list("Pod", NAMESPACE, "app=litellm")), 120, "only the tree's pods run")


def test_the_pvc_and_its_volume_are_never_deleted_by_the_engine(takeover: dict) -> None:
    cluster: ControlPlane = takeover["cluster"]
    pvc = _pvc(cluster)
    assert pvc["metadata"]["uid"] == takeover["pvc"]["metadata"]["uid"] and pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    for ks in stage_names(SITE):
        inventory = cluster.api.get("Kustomization", ks, "flux-system")["status"]["inventory"]["entries"]
        assert not any("PersistentVolumeClaim" in e["id"] for e in inventory), ks
    # a later commit prunes what the tree dropped; the claim stays, as it is in no inventory
    repo: GitOpsRepo = takeover["repo"]
    site_file = repo.root / f"sites/{SITE}/site.yaml"
    site_file.write_text(site_file.read_text() + "pdb: {enabled: true}\n")
    repo.render()
    revision = repo.commit("a PDB")
    repo.reconcile_now(SITE)
    wait_converged(cluster, SITE, NAMESPACE, revision)
    assert _pvc(cluster)["metadata"]["uid"] == pvc["metadata"]["uid"]


def test_the_after_commands_remove_what_was_replaced(takeover: dict) -> None:
    cluster: ControlPlane = takeover["cluster"]
    for argv in _commands(takeover["adopted"].out, "after"):
        cluster.kubectl(*argv)
    assert cluster.api.get("ConfigMap", "litellm-config", NAMESPACE) is None
    assert cluster.api.get("Secret", f"{NAMESPACE}-tls-secret", NAMESPACE) is None
    names = [c["metadata"]["name"] for c in cluster.api.list("ConfigMap", NAMESPACE)]
    assert any(n.startswith("litellm-config-") for n in names), names
    assert condition(cluster.api.get("Deployment", "litellm", NAMESPACE), "Available")["status"] == "True"


def test_doctor_warns_that_thinkube_control_would_uninstall_a_site_in_its_namespace(takeover: dict) -> None:
    """A site in the catalog's namespace (litellm) makes thinkube-control offer Uninstall: doctor says what it does."""
    repo: GitOpsRepo = takeover["repo"]
    cluster: ControlPlane = takeover["cluster"]
    site_file = repo.root / f"sites/{SITE}/site.yaml"
    text = site_file.read_text()
    try:
        site_file.write_text(text.replace(f"namespace: {NAMESPACE}", "namespace: litellm"))
        done = generator(repo.root, "doctor", "--cluster", "--json", "--site", SITE, "--kubeconfig",
                         str(cluster.kubeconfig), env=repo.env)
    finally:
        site_file.write_text(text)
    checks = {c["what"]: c for c in json.loads(done.out)}
    warning = checks["thinkube-control: ConfigMap litellm/thinkube-service-config"]
    assert warning["status"] == "warn" and "DROP DATABASE litellm" in warning["detail"], warning


def test_removing_the_site_keeps_the_namespace_and_the_pvc(takeover: dict) -> None:
    """The adopted site says keepNamespace: deleting its Kustomizations (what the fleet's parent does to a site
    removed from git) deletes what the tree applied, but not the namespace, so not the original's PVC."""
    cluster: ControlPlane = takeover["cluster"]
    repo: GitOpsRepo = takeover["repo"]
    namespace = cluster.api.get("Namespace", NAMESPACE)
    assert namespace["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    cluster.kubectl("delete", "-k", str(repo.root / f"deploy/flux/{SITE}"), "--wait=false")
    for ks in stage_names(SITE):
        wait_for(lambda ks=ks: cluster.api.get("Kustomization", ks, "flux-system") is None, 120,
                 f"Kustomization {ks} gone", lambda: cluster.logs("kustomize-controller", 2000))
    wait_for(lambda: cluster.api.get("Deployment", "litellm", NAMESPACE) is None, 60, "the tree's Deployment pruned")
    kept = cluster.api.get("Namespace", NAMESPACE)
    assert kept is not None and not kept["metadata"].get("deletionTimestamp"), kept
    assert _pvc(cluster)["metadata"]["uid"] == takeover["pvc"]["metadata"]["uid"]
