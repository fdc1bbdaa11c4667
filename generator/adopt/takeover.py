"""What the first sync does to each object the playbooks made, and the command for what it cannot do (pure).

The tree renders the same names as the playbooks for the Service, the route and the discovery ConfigMap: the
engine takes them over in place, no duplicate. Three things need the operator:

* the Secret: the sealed-secrets controller refuses to overwrite a Secret no SealedSecret owns unless the Secret
  says ``sealedsecrets.bitnami.com/managed: "true"``: one annotation before the first sync (values unchanged);
* objects the tree replaces but does not own (the config under a hashed name, an Ingress when the site routes by
  HTTPRoute, the copied certificate, the PVC): listed with the command that removes them, to run after the sync;
* the Deployment: merged with the old owner's fields, its env would hold entries with both a value and a
  valueFrom (the API server refuses them), and fields of a manager no engine takes over (Ansible's
  ``kubernetes.core`` writes as its Python client's user agent, ``OpenAPI-Generator``) would keep the
  playbooks' busybox waits and init-db in the pod; so the old Deployment is deleted with ``--cascade=orphan`` first: its pods keep serving until the
  tree's Deployment (same name, same selector) replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.adopt.originals import CONFIG, DEPLOYMENT, INGRESS, PVC, ROUTE, SECRET, Originals
from generator.model import Site

# Managers whose fields Flux's kustomize-controller moves to itself before applying (fluxcd/pkg ssa: a prefix
# match on Update entries), so fields the tree leaves out are removed by its apply.
FLUX_TAKES_OVER = ("kubectl", "before-first-apply")
MANAGED = "sealedsecrets.bitnami.com/managed"


@dataclass(frozen=True)
class Step:
    when: str  # "before" the first sync, "after" it, or "kept"/"in place" (nothing to run)
    what: str
    command: str = ""

    def line(self) -> str:
        return f"{self.when:<9} {self.what}" + (f"\n          {self.command}" if self.command else "")


def takeover_steps(originals: Originals, site: Site) -> list[Step]:
    ns = originals.namespace
    kubectl = f"kubectl -n {ns}"
    steps = [Step("in place", f"Service {ns}/litellm"
                  + (f", ConfigMap {ns}/thinkube-service-config" if originals.discovery else "")
                  + ": the tree renders the same names; the engine takes them over")]
    if site.secrets.mode == "sealed":
        steps.append(Step("before", f"Secret {ns}/{SECRET}: let the sealed-secrets controller take it over (it refuses "
                          "a Secret no SealedSecret owns); the values are the same",
                          f"{kubectl} annotate secret {SECRET} {MANAGED}=true"))
    else:
        steps.append(Step("in place", f"Secret {ns}/{SECRET}: Flux applies the sops Secret over it, same values"))
    steps += _deployment(originals, site, kubectl)
    steps.append(Step("after", f"ConfigMap {ns}/{CONFIG}: replaced by the tree's {CONFIG}-<hash>; unused once the "
                      "new pods run", f"{kubectl} delete configmap {CONFIG}"))
    steps += _routes(originals, site, kubectl)
    if originals.pvc is not None:
        size = originals.pvc.get("spec", "resources", "requests", "storage") or "?"
        if site.persistence.enabled:
            steps.append(Step("kept", f"PersistentVolumeClaim {ns}/{PVC} ({size}): the tree renders it with pruning "
                              "disabled for Flux and Argo CD: no engine ever deletes it"))
        else:
            steps.append(Step("kept", f"PersistentVolumeClaim {ns}/{PVC} ({size}): not in the tree, so no engine "
                              "owns or prunes it; LiteLLM 1.108.7 writes nothing there. Delete it only once its data "
                              f"is not wanted: {kubectl} delete pvc {PVC}"))
    return steps


def _deployment(originals: Originals, site: Site, kubectl: str) -> list[Step]:
    """The old Deployment cannot be applied over: its env reads UI_USERNAME and the S3 settings from the Secret
    (valueFrom) where the tree sets a value, and the API server refuses an entry with both, which is what the
    merge with the old owner's fields gives (Flux's dry-run fails before its takeover of kubectl's fields)."""
    managers = originals.managers
    others = [m for m in managers or () if not m.startswith(FLUX_TAKES_OVER)]
    owners = (f"written by {', '.join(others)}, which no engine takes over" if others else
              "written by kubectl" if managers else "whose field managers the source does not show")
    return [Step("before", f"Deployment {originals.namespace}/{DEPLOYMENT}: its fields, {owners}, would stay merged "
                 "under the engine's apply (env from the Secret where the tree sets a value: the API server refuses "
                 "it; the playbooks' init containers and volumes); delete the object, not its pods: they serve until "
                 "the tree's Deployment, same selector, replaces them",
                 f"{kubectl} delete deployment {DEPLOYMENT} --cascade=orphan")]


def _routes(originals: Originals, site: Site, kubectl: str) -> list[Step]:
    ns = originals.namespace
    steps = []
    if originals.ingress is not None and site.routing.type != "ingress":
        steps.append(Step("after", f"Ingress {ns}/{INGRESS}: replaced by the HTTPRoute {site.routing.httproute.name}",
                          f"{kubectl} delete ingress {INGRESS}"))
    if originals.httproute is not None and site.routing.type != "httproute":
        steps.append(Step("after", f"HTTPRoute {ns}/{ROUTE}: replaced by the Ingress {site.routing.ingress.name}",
                          f"{kubectl} delete httproute {ROUTE}"))
    if originals.tls_secret is not None:
        name = originals.tls_secret.name
        if site.routing.type == "ingress" and site.routing.ingress.tls_secret_name == name:
            steps.append(Step("kept", f"Secret {ns}/{name}: the playbook's copy of the wildcard certificate, which the "
                              "Ingress serves; not in the tree (a renewal is not copied)"))
        else:
            steps.append(Step("after", f"Secret {ns}/{name}: the playbook's copy of the wildcard certificate; the "
                              "Gateway terminates TLS, nothing reads it", f"{kubectl} delete secret {name}"))
    return steps
