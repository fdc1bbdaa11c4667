"""What the first sync does to each object the playbooks made, and the command for what it cannot do (pure).

The tree renders the same names as the playbooks for the Deployment, the Service, the route and the discovery
ConfigMap: the engine takes them over in place, no duplicate. Three things need the operator:

* the Secret: the sealed-secrets controller refuses to overwrite a Secret no SealedSecret owns unless the Secret
  says ``sealedsecrets.bitnami.com/managed: "true"``: one annotation before the first sync (values unchanged);
* objects the tree replaces but does not own (the config under a hashed name, an Ingress when the site routes by
  HTTPRoute, the copied certificate, the PVC): listed with the command that removes them, to run after the sync;
* fields of the Deployment written by a field manager Flux does not take over (Flux's server-side apply takes
  over ``kubectl``'s and ``before-first-apply``; Ansible's ``kubernetes.core`` writes as ``OpenAPI-Generator``):
  those would stay merged into the pod (the playbooks' busybox waits and init-db), so the old Deployment is
  deleted with ``--cascade=orphan`` first: its pods keep serving until the tree's Deployment replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.adopt.originals import CONFIG, DEPLOYMENT, INGRESS, PVC, ROUTE, SECRET, Originals
from generator.model import Site

# Managers whose fields Flux's kustomize-controller moves to itself before applying (fluxcd/pkg ssa: a prefix
# match on Update entries), so fields the tree leaves out are removed by its apply.
FLUX_TAKES_OVER = ("kubectl", "before-first-apply")
MANAGED = "sealedsecrets.bitnami.com/managed"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


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
    steps = [Step("in place", f"Deployment {ns}/{DEPLOYMENT}, Service {ns}/litellm"
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
    managers = originals.managers
    others = [m for m in managers or () if not m.startswith(FLUX_TAKES_OVER)]
    # Argo CD applies client-side: a three-way merge against kubectl's last-applied annotation removes what the
    # original applied and the tree does not set; without that annotation (kubectl create) the fields stay
    applied = bool(originals.deployment.get("metadata", "annotations", LAST_APPLIED))
    orphan = f"{kubectl} delete deployment {DEPLOYMENT} --cascade=orphan"
    if managers is not None and not others and (applied or not site.gitops.argocd.enabled):
        return []
    if others:
        why = (f"fields written by {', '.join(others)} stay merged into the pod under the engine's apply (the "
               "playbooks' init containers, command and volumes)")
    elif managers is not None:
        why = "created without kubectl's last-applied annotation: Argo CD's client-side apply would keep its fields"
    else:
        why = ("the source does not show who wrote its fields (kubectl get --show-managed-fields): a manager the "
               "engine does not take over (Ansible's OpenAPI-Generator) keeps the playbooks' init containers, "
               "command and volumes merged into the pod")
    return [Step("before", f"Deployment {originals.namespace}/{DEPLOYMENT}: {why}; delete the object, not its "
                 "pods (they serve until the tree's Deployment, same selector, replaces them)", orphan)]


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
