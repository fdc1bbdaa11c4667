"""Every malformed site file exits 2 with one message naming file, line, field and problem,
and changes nothing under overlays/ or deploy/ (issue 2, point 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import UsageError
from generator.layout import Repo
from tests.helpers import fingerprint, generator

GOOD = "domain: example.com\n"
PLANTED = "sk-proj-" + "FAKE" * 5  # a credential pasted where it does not belong: never in a message but as a key

# (id, site.yaml text, expected line or None, expected field or None, expected words in the problem)
CASES = [
    ("unknown-top-key", "domain: example.com\nreplica: 2\n", 2, "replica", "unknown key"),
    ("typo-suggestion", "domian: example.com\n", 1, "domian", "did you mean 'domain'"),
    ("unknown-nested-key", "domain: example.com\nkeycloak:\n  realmm: x\n", 3, "keycloak.realmm", "unknown key"),
    ("wrong-type-int", "domain: example.com\nreplicas: two\n", 2, "replicas", "valid integer"),
    ("wrong-type-bool", "domain: example.com\ncache:\n  enabled: maybe\n", 3, "cache.enabled", "valid boolean"),
    ("wrong-type-list", "domain: example.com\nmodels: {}\n", 2, "models", "valid list"),
    ("wrong-type-mapping", "domain: example.com\nimage: ghcr.io/berriai/litellm\n", 2, "image", "dictionary"),
    ("missing-domain", "namespace: litellm\n", None, "domain", "required field is missing"),
    ("missing-model-field", "domain: example.com\nmodels:\n  - name: gpt\n", 3, "models[0].model", "required"),
    ("bad-hostname", "domain: example.com\nhostname: Bad_Host.example.com\n", 2, "hostname", "not a valid DNS hostname"),
    ("bad-domain-single-label", "domain: localhost\n", 1, "domain", "not a valid DNS hostname"),
    ("latest-tag", "domain: example.com\nimage:\n  tag: latest\n", 3, "image.tag", "mutable tag"),
    ("main-latest-tag", "domain: example.com\nimage:\n  tag: main-latest\n", 3, "image.tag", "mutable tag"),
    ("unversioned-tag", "domain: example.com\nimage:\n  tag: main-stable\n", 3, "image.tag", "names no release version"),
    ("vulnerable-version", "domain: example.com\nimage:\n  tag: v1.83.9\n", 3, "image.tag", "CVE-2026-49468"),
    ("bad-digest", "domain: example.com\nimage:\n  digest: sha256:xyz\n", 3, "image.digest", "image digest"),
    ("duplicate-model", "domain: example.com\nmodels:\n  - {name: a, model: openai/x}\n  - {name: a, model: openai/y}\n",
     4, "models[1].name", "duplicate model name 'a'"),
    ("duplicate-key", "domain: example.com\nreplicas: 1\nreplicas: 2\n", 3, None, "duplicate key 'replicas'"),
    ("yaml-syntax", "domain: example.com\nimage: [unclosed\n", 3, None, "YAML syntax error"),
    ("yaml-tab-indent", "domain: example.com\nimage:\n\trepository: x\n", 3, None, "YAML syntax error"),
    ("empty-file", "", None, None, "file is empty"),
    ("only-comments", "# nothing here\n", None, None, "file is empty"),
    ("top-level-list", "- domain: example.com\n", 1, None, "must be a mapping"),
    ("top-level-scalar", "just a string\n", 1, None, "must be a mapping"),
    ("routing-type", "domain: example.com\nrouting:\n  type: nodeport\n", 3, "routing.type", "'httproute' or 'ingress'"),
    ("negative-replicas", "domain: example.com\nreplicas: -1\n", 2, "replicas", "greater than or equal to 0"),
    ("bad-quantity", "domain: example.com\nresources:\n  limits: {cpu: lots, memory: 1Gi}\n", 3, "resources.limits.cpu",
     "Kubernetes quantity"),
    ("bad-duration", "domain: example.com\ngitops:\n  flux:\n    interval: 5 minutes\n", 4, "gitops.flux.interval", "duration"),
    ("persistence-with-replicas", "domain: example.com\ndiscovery: {platformScaling: false}\nreplicas: 2\n"
     "persistence:\n  enabled: true\n", 5, "persistence.enabled", "multi-attach"),
    ("persistence-with-hpa", "domain: example.com\nhpa: {enabled: true}\npersistence: {enabled: true}\n", 3,
     "persistence.enabled", "ReadWriteOnce"),
    ("toleration-exists-with-value", "domain: example.com\npod:\n  tolerations:\n    - {key: a, operator: Exists, value: b}\n",
     4, "pod.tolerations[0]", "operator Exists takes no value"),
    ("affinity-typo", "domain: example.com\npod:\n  affinity:\n    nodeAfinity: {}\n", 4, "pod.affinity.nodeAfinity",
     "did you mean 'nodeAffinity'"),
    ("pod-label-managed", "domain: example.com\npod:\n  labels: {app: mine}\n", 3, "pod.labels", "set by the generator"),
    ("pod-label-value", "domain: example.com\npod:\n  labels: {team: 'not valid!'}\n", 3, "pod.labels.team", "label value"),
    ("affinity-weight", "domain: example.com\npod:\n  affinity:\n    podAntiAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n"
     "        - {weight: 0, podAffinityTerm: {topologyKey: x}}\n", 6,
     "pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", "greater than or equal to 1"),
    ("spread-min-domains", "domain: example.com\npod:\n  topologySpreadConstraints:\n    - {maxSkew: 1, topologyKey: zone, "
     "whenUnsatisfiable: ScheduleAnyway, minDomains: 2}\n", 4, "pod.topologySpreadConstraints[0]", "minDomains"),
    ("pull-secret-name", "domain: example.com\npod:\n  imagePullSecrets: [Harbor_Pull]\n", 3, "pod.imagePullSecrets[0]",
     "Secret name"),
    ("node-selector-key", "domain: example.com\npod:\n  nodeSelector: {'bad key!': x}\n", 3, "pod.nodeSelector.bad key!",
     "label or annotation key"),
    ("router-strategy", "domain: example.com\nrouter:\n  routingStrategy: fastest\n", 3, "router.routingStrategy",
     "'least-busy'"),
    ("router-fallback-itself", "domain: example.com\nrouter:\n  fallbacks:\n    - {model: gpt, to: [gpt]}\n", 4,
     "router.fallbacks[0]", "cannot fall back to itself"),
    ("router-fallback-unknown", "domain: example.com\ngeneralSettings: {storeModelInDb: false}\nmodels:\n"
     "  - {name: gpt, model: openai/gpt-4o}\nrouter:\n  fallbacks:\n    - {model: gpt, to: [claude]}\n", 7,
     "router.fallbacks[0]", "'claude' is not in models"),
    ("env-from-both", "domain: example.com\nextraEnvFrom:\n  - {secretRef: a, configMapRef: b}\n", 3, "extraEnvFrom[0]",
     "exactly one of secretRef or configMapRef"),
    ("env-from-neither", "domain: example.com\nextraEnvFrom:\n  - {prefix: X_}\n", 3, "extraEnvFrom[0]",
     "exactly one of secretRef or configMapRef"),
    ("env-secret-key", "domain: example.com\nextraEnv:\n  TOKEN: {secret: tokens, key: 'a key'}\n", 3,
     "extraEnv.TOKEN.key", "should match pattern"),
    ("env-secret-managed", "domain: example.com\nextraEnv:\n  DATABASE_URL: {secret: db, key: url}\n", 2, "extraEnv",
     "set by the generator"),
    ("bad-git-url", "domain: example.com\ngitops:\n  argocd:\n    repoUrl: not-a-url\n", 4, "gitops.argocd.repoUrl", "git URL"),
    ("secret-key-name", "domain: example.com\nmodels:\n  - {name: a, model: openai/x, apiKeySecret: my-key}\n", 3,
     "models[0].apiKeySecret", "secret key name"),
    ("extra-env-managed", "domain: example.com\nextraEnv:\n  LITELLM_MASTER_KEY: x\n", 2, "extraEnv", "set by the generator"),
    ("extra-env-bad-name", "domain: example.com\nextraEnv:\n  1BAD: x\n", 3, "extraEnv.1BAD", "environment variable name"),
    ("hpa-order", "domain: example.com\nhpa: {enabled: true, minReplicas: 4, maxReplicas: 2}\n", 2, "hpa", "below minReplicas"),
    ("cache-call-type", "domain: example.com\ncache:\n  callTypes: [completion, teleport]\n", 3, "cache.callTypes[1]", "Input should be"),
    ("ttl-string", "domain: example.com\ncache:\n  ttl: '3600'\n", 3, "cache.ttl", "valid integer"),
    ("sops-with-argocd", "domain: example.com\nsecrets:\n  mode: sops\n  fluxRecipients: [%s]\n" % ("age1" + "q" * 58), 3,
     "secrets.mode", "Argo CD cannot decrypt sops"),
    ("sops-without-recipients", "domain: example.com\nsecrets: {mode: sops}\n", 2, "secrets.fluxRecipients",
     "list the cluster's age recipients"),
    ("bad-age-recipient", "domain: example.com\nsecrets: {fluxRecipients: [age2xyz]}\n", 2, "secrets.fluxRecipients[0]",
     "age recipient"),
    ("wait-for-latest", "domain: example.com\nwaitFor: {image: 'busybox:latest'}\n", 2, "waitFor.image", "not pinned"),
    ("wait-for-docker-hub", "domain: example.com\nwaitFor: {image: 'busybox:1.37.0'}\n", 2, "waitFor.image", "Docker Hub"),
    ("wait-for-docker-io", "domain: example.com\nwaitFor: {image: 'docker.io/library/busybox:1.37.0'}\n", 2,
     "waitFor.image", "Docker Hub"),
    ("replicas-under-platform-scaling", "domain: example.com\nreplicas: 3\n", 2, "replicas",
     "discovery.platformScaling: false"),
    ("pdb-blocks-drain", "domain: example.com\npdb: {enabled: true, minAvailable: 1}\n", 2, "pdb.minAvailable",
     "blocks every voluntary eviction"),
    ("pdb-blocks-drain-hpa", "domain: example.com\nhpa: {enabled: true, minReplicas: 2}\npdb:\n  enabled: true\n"
     "  minAvailable: 2\n", 5, "pdb.minAvailable", "(hpa.minReplicas)"),
    ("pdb-both-rules", "domain: example.com\npdb: {enabled: true, minAvailable: 0, maxUnavailable: 1}\n", 2,
     "pdb.minAvailable", "not both"),
    ("migration-deadline-too-short", "domain: example.com\nmigration: {deadlineSeconds: 5}\n", 2,
     "migration.deadlineSeconds", "greater than or equal to 60"),
    ("not-utf8", b"domain: \xff\xfe\n", None, None, "not UTF-8"),
    ("duplicate-passthrough", "domain: example.com\npassThroughEndpoints:\n  - {path: /a, target: 'https://x.example.com'}\n"
     "  - {path: /a, target: 'https://y.example.com'}\n", 4, "passThroughEndpoints[1].path", "duplicate pass-through path"),
    ("anchor-alias-wrong-type", "domain: &d example.com\nreplicas: *d\n", 2, "replicas", "valid integer"),
    # issue 11: several replicas, JWT, drain, callbacks, metrics, egress
    ("hpa-without-redis", "domain: example.com\nhpa: {enabled: true}\n", 1, "redis.enabled", "multiplied by the number"),
    ("replicas-without-redis", "domain: example.com\ndiscovery: {platformScaling: false}\nreplicas: 2\nredis: {tls: true}\n",
     4, "redis.enabled", "2 replicas without Redis"),
    ("redis-port", "domain: example.com\nredis:\n  enabled: true\n  port: 70000\n", 4, "redis.port", "less than or equal"),
    ("redis-password-key", "domain: example.com\nredis: {enabled: true, passwordSecret: valkey-auth}\n", 2,
     "redis.passwordSecret", "secret key name"),
    ("redis-typo", "domain: example.com\nredis: {enabled: true, hots: valkey}\n", 2, "redis.hots", "did you mean 'host'"),
    ("jwt-ttl", "domain: example.com\njwtAuth: {enabled: true, publicKeyTtl: 1}\n", 2, "jwtAuth.publicKeyTtl",
     "greater than or equal to 10"),
    ("drain-too-long", "domain: example.com\ndrain:\n  seconds: 7200\n", 3, "drain.seconds", "less than or equal to 3600"),
    ("drain-token-key", "domain: example.com\ndrain: {tokenSecret: drain-token}\n", 2, "drain.tokenSecret", "secret key name"),
    ("extra-env-drain", "domain: example.com\nextraEnv:\n  GRACEFUL_SHUTDOWN_TIMEOUT: '5'\n", 2, "extraEnv",
     "jwtAuth, drain or callbacks"),
    ("extra-env-redis", "domain: example.com\nextraEnv:\n  REDIS_HOST: valkey\n", 2, "extraEnv", "set by the generator"),
    ("langfuse-same-key", "domain: example.com\ncallbacks:\n  langfuse: {publicKeySecret: LF, secretKeySecret: LF}\n", 3,
     "callbacks.langfuse", "name the same key"),
    ("langfuse-event", "domain: example.com\ncallbacks:\n  langfuse:\n    events: [start]\n", 4,
     "callbacks.langfuse.events[0]", "'success' or 'failure'"),
    ("langfuse-host", "domain: example.com\ncallbacks:\n  langfuse: {host: langfuse:3000}\n", 3, "callbacks.langfuse.host",
     "http(s) URL"),
    ("monitor-without-metrics", "domain: example.com\nmetrics:\n  serviceMonitor: {enabled: true}\n", 2, "metrics.enabled",
     "Prometheus callback"),
    ("monitor-interval", "domain: example.com\nmetrics:\n  enabled: true\n  serviceMonitor: {interval: often}\n", 4,
     "metrics.serviceMonitor.interval", "scrape interval"),
    ("egress-without-policy", "domain: example.com\nnetworkPolicy:\n  egress: {enabled: true}\n", 2, "networkPolicy.enabled",
     "part of the NetworkPolicy"),
    ("egress-needs-blocks", "domain: example.com\nnetworkPolicy:\n  enabled: true\n  egress: {enabled: true}\n", 4,
     "networkPolicy.egress.external", "keycloak.url is outside the cluster"),
    ("egress-bad-cidr", "domain: example.com\nnetworkPolicy:\n  egress:\n    external:\n      - cidr: 10.0.0.1/8\n", 5,
     "networkPolicy.egress.external[0].cidr", "not a CIDR block"),
    ("egress-except-outside", "domain: example.com\nnetworkPolicy:\n  egress:\n    external:\n"
     "      - {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}\n", 5, "networkPolicy.egress.external[0]", "not inside"),
    # a value where it does not belong is described, never shown, unless it is a short word or a number
    ("extra-env-as-k8s-list", "domain: example.com\nextraEnv:\n  - {name: OPENAI_API_KEY, value: " + PLANTED + "}\n",
     2, "extraEnv", "valid dictionary (found a list of 1 item)"),
    ("secret-in-an-integer", f"domain: example.com\nreplicas: {PLANTED}\n", 2, "replicas",
     f"valid integer (found a string of {len(PLANTED)} characters)"),
    ("secret-in-a-choice", f"domain: example.com\nrouting: {{type: {PLANTED}}}\n", 2, "routing.type",
     f"(found a string of {len(PLANTED)} characters)"),
]


@pytest.mark.parametrize(("body", "line", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_site_is_refused_and_nothing_changes(repo: Path, body: str | bytes, line: int | None, field: str | None,
                                                  words: str) -> None:
    site = repo / "sites" / "prod" / "site.yaml"
    site.write_bytes(body if isinstance(body, bytes) else body.encode())
    before = fingerprint(repo)

    result = generator(repo, "render", "--site", "prod", "--no-validate")

    assert result.code == 2, result.text
    message = result.err.strip()
    assert message.count("\n") == 0, f"expected one line, got: {message}"
    where = "sites/prod/site.yaml" + (f":{line}:" if line else ":")
    assert message.startswith(f"error: {where}"), message
    if field:
        assert f" {field}: " in message, message
    assert words in message, message
    assert PLANTED not in message and "FAKE" not in message, message
    assert fingerprint(repo) == before


def test_unknown_site_is_a_usage_error(repo: Path) -> None:
    before = fingerprint(repo)
    result = generator(repo, "render", "--site", "staging")
    assert result.code == 2
    assert "sites/staging/site.yaml: unknown site 'staging' (known sites: prod)" in result.err
    assert fingerprint(repo) == before


def test_invalid_site_name_is_a_usage_error(repo: Path) -> None:
    result = generator(repo, "render", "--site", "../etc")
    assert result.code == 2
    assert "site name '../etc' is invalid" in result.err


def test_one_bad_site_in_all_stops_every_write(repo: Path) -> None:
    (repo / "sites" / "dev").mkdir()
    (repo / "sites" / "dev" / "site.yaml").write_text("domain: example.com\nreplicas: many\n")
    before = fingerprint(repo)
    result = generator(repo, "render", "--all", "--no-validate")
    assert result.code == 2
    assert "sites/dev/site.yaml:2: replicas:" in result.err
    assert fingerprint(repo) == before


def test_an_unknown_site_in_a_fleet_names_ten_known_ones(tmp_path: Path) -> None:
    for index in range(25):
        (tmp_path / f"sites/s{index:02d}").mkdir(parents=True)
        (tmp_path / f"sites/s{index:02d}/site.yaml").write_text("domain: example.com\n")
    with pytest.raises(UsageError) as raised:
        Repo(tmp_path).check_site_name("nope")
    assert str(raised.value).endswith("(known sites: s00, s01, s02, s03, s04, s05, s06, s07, s08, s09 and 15 more)")


def test_schema_check_names_a_missing_schema_missing(repo: Path) -> None:
    (repo / "schema").mkdir(exist_ok=True)
    (repo / "schema/site.schema.json").unlink(missing_ok=True)
    missing = generator(repo, "schema", "--check")
    assert (missing.code, missing.out) == (1, "schema/site.schema.json is missing; run 'generator schema'\n")
    assert generator(repo, "schema").code == 0
    assert generator(repo, "schema", "--check").out == "schema/site.schema.json is up to date\n"
