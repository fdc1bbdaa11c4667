"""Where and how the pods run: the LiteLLM Helm chart's scheduling knobs as closed, typed models.

Each model mirrors the Kubernetes field it renders (core/v1 Toleration, Affinity, TopologySpreadConstraint,
LocalObjectReference) with camelCase keys, so a misspelt key is an error at the site file's line, not a
silent drop or a late kubeconform message.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from generator.redact import shown

# a qualified name with an optional DNS prefix (kubernetes.io/hostname, team), as label and annotation keys are
QUALIFIED_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                          r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# keys the generator sets on the pods: a site cannot override them
MANAGED_LABELS = ("app", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of")


def matching(pattern: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if len(value) > 253 or not pattern.match(value):
            raise ValueError(f"{shown(value)} is not a valid {what}")
        return value
    return AfterValidator(check)


QualifiedName = Annotated[str, matching(QUALIFIED_RE, "label or annotation key (optional DNS prefix, then a name)")]
LabelValue = Annotated[str, matching(LABEL_VALUE_RE, "label value (at most 63 letters, digits, '-', '_', '.')")]
SecretName = Annotated[str, matching(DNS_LABEL_RE, "Secret name (a DNS label)")]


class K8sModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, strict=True)

    def render(self) -> dict[str, Any]:
        return _drop_empty_values(self.model_dump(by_alias=True, exclude_none=True))


class Toleration(K8sModel):
    key: QualifiedName | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Toleration":
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists takes no value")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies to effect NoExecute only")
        return self


class Requirement(K8sModel):
    """A label selector requirement (matchExpressions entry)."""

    key: QualifiedName
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values(self) -> "Requirement":
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class NodeRequirement(Requirement):
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]  # type: ignore[assignment]


class LabelSelector(K8sModel):
    match_labels: dict[QualifiedName, LabelValue] | None = None
    match_expressions: list[Requirement] | None = None


class NodeSelectorTerm(K8sModel):
    match_expressions: list[NodeRequirement] = Field(min_length=1)


class RequiredNodeAffinity(K8sModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1)


class PreferredNodeTerm(K8sModel):
    weight: Annotated[int, Field(ge=1, le=100)]
    preference: NodeSelectorTerm


class NodeAffinity(K8sModel):
    required_during_scheduling_ignored_during_execution: RequiredNodeAffinity | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredNodeTerm] | None = None


class PodAffinityTerm(K8sModel):
    topology_key: QualifiedName
    label_selector: LabelSelector | None = None
    namespaces: list[Annotated[str, matching(DNS_LABEL_RE, "namespace")]] | None = None
    namespace_selector: LabelSelector | None = None


class WeightedPodAffinityTerm(K8sModel):
    weight: Annotated[int, Field(ge=1, le=100)]
    pod_affinity_term: PodAffinityTerm


class PodAffinity(K8sModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = None


class Affinity(K8sModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class TopologySpreadConstraint(K8sModel):
    max_skew: Annotated[int, Field(ge=1)]
    topology_key: QualifiedName
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: LabelSelector | None = None
    min_domains: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _min_domains(self) -> "TopologySpreadConstraint":
        if self.min_domains is not None and self.when_unsatisfiable != "DoNotSchedule":
            raise ValueError("minDomains applies to whenUnsatisfiable DoNotSchedule only")
        return self


def _drop_empty_values(node: Any) -> Any:
    """Requirement entries with Exists/DoesNotExist render without an empty `values` list."""
    if isinstance(node, dict):
        return {k: _drop_empty_values(v) for k, v in node.items() if not (k == "values" and v == [])}
    if isinstance(node, list):
        return [_drop_empty_values(v) for v in node]
    return node


class PodSettings(K8sModel):
    """The site's `pod` section. Every pod of the site (the migration Job's too) gets the placement,
    registry and metadata settings; the Deployment's pods also the spread and affinity, which replace the
    generator's defaults (a preferred spread over nodes when there is more than one pod)."""

    node_selector: dict[QualifiedName, LabelValue] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    affinity: Affinity | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None
    image_pull_secrets: list[SecretName] = Field(default_factory=list)
    annotations: dict[QualifiedName, str] = Field(default_factory=dict)
    labels: dict[QualifiedName, LabelValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unmanaged_labels(self) -> "PodSettings":
        clash = sorted(set(self.labels) & set(MANAGED_LABELS))
        if clash:  # a site_rule error: the loader points at pod.labels
            raise PydanticCustomError("site_rule", "{clash} is set by the generator (the selectors and the recommended "
                                      "labels)", {"at": "labels", "clash": ", ".join(clash)})
        return self

    def placement(self) -> dict[str, Any]:
        """nodeSelector, tolerations and imagePullSecrets: for every pod of the site."""
        pod: dict[str, Any] = {}
        if self.node_selector:
            pod["nodeSelector"] = dict(sorted(self.node_selector.items()))
        if self.tolerations:
            pod["tolerations"] = [t.render() for t in self.tolerations]
        if self.image_pull_secrets:
            pod["imagePullSecrets"] = [{"name": name} for name in self.image_pull_secrets]
        return pod

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.labels:
            meta["labels"] = dict(sorted(self.labels.items()))
        if self.annotations:
            meta["annotations"] = dict(sorted(self.annotations.items()))
        return meta
