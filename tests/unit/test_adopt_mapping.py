"""Issue 24: what `generator adopt` maps from a playbook install's config.yaml and pod, and what it leaves behind
with the line it was on (pure: a dump read from a file, no tool, no cluster); doctor's thinkube-control check."""

from __future__ import annotations

from pathlib import Path

from generator.adopt.mapping import adopt_objects
from generator.adopt.originals import read_dump
from generator.cluster_doctor import WARN, _thinkube_control
from generator.model import Site
from tests import thinkube_original as original

CONFIG = """\
database_url: os.environ/DATABASE_URL
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  salt_key: os.environ/LITELLM_SALT_KEY
  proxy_batch_write_at: 30
  alerting: [slack]
litellm_settings:
  cache: true
  cache_params: {type: s3, ttl: 600}
  success_callback: [langfuse]
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, rpm: 60}
  - model_name: local
    litellm_params: {model: ollama/llama3, api_base: "http://ollama.ollama.svc.cluster.local:11434"}
  - model_name: leaky
    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-plaintext-in-the-configmap}
  - model_name: odd
    litellm_params: {model: openai/o1, custom_llm_provider: openai}
router_settings:
  routing_strategy: least-busy
  num_retries: 2
  fallbacks: [{gpt-4o: [local]}]
  redis_host: valkey
"""


def _adopt(tmp_path: Path):  # noqa: ANN202
    values = {**original.values(), "OPENAI_API_KEY": "sk-provider-key"}
    objs = original.objects("home.example.net", values)
    config = next(o for o in objs if o["metadata"]["name"] == "litellm-config")
    config["data"]["config.yaml"] = CONFIG
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    env += [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "litellm-secrets", "key": "OPENAI_API_KEY"}}},
            {"name": "LITELLM_LOG", "value": "DEBUG"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    dump = tmp_path / "dump.yaml"
    dump.write_text(original.dump(objs))
    return dump, read_dump(dump, None), values


def test_config_models_router_and_env_map_and_the_rest_is_left_with_its_line(tmp_path: Path) -> None:
    dump, originals, values = _adopt(tmp_path)
    result = adopt_objects(originals)
    tree = result.tree()
    Site.model_validate(tree)  # what adopt writes is a valid site
    assert tree["generalSettings"] == {"proxyBatchWriteAt": 30}
    assert tree["cache"] == {"ttl": 600}
    assert tree["models"] == [{"name": "gpt-4o", "model": "openai/gpt-4o", "rpm": 60, "apiKeySecret": "OPENAI_API_KEY"},
                              {"name": "local", "model": "ollama/llama3",
                               "apiBase": "http://ollama.ollama.svc.cluster.local:11434"}]
    assert tree["router"] == {"routingStrategy": "least-busy", "numRetries": 2,
                              "fallbacks": [{"model": "gpt-4o", "to": ["local"]}]}
    assert tree["extraEnv"] == {"LITELLM_LOG": "DEBUG", "HF_TOKEN": {"secret": "hf", "key": "token"}}
    assert result.secrets["OPENAI_API_KEY"] == "sk-provider-key"
    text = dump.read_text().splitlines()
    line = lambda needle: next(i for i, t in enumerate(text, start=1) if needle in t)  # noqa: E731
    left = {note.what.split(":")[0]: note.where for note in result.left}
    assert left == {
        "general_settings.alerting": f"{dump}:{line('alerting: [slack]')}",
        "litellm_settings.success_callback": f"{dump}:{line('success_callback')}",
        "model leaky": f"{dump}:{line('model_name: leaky')}",
        "model odd": f"{dump}:{line('model_name: odd')}",
        "router_settings.redis_host": f"{dump}:{line('redis_host')}",
        "env POD_IP": left["env POD_IP"],
    }, result.left
    assert left["env POD_IP"].startswith(f"{dump}:")
    every = " ".join(n.what for n in result.left + result.changed)
    assert "sk-plaintext-in-the-configmap" not in every and values["LITELLM_MASTER_KEY"] not in every


class _Reader:
    def __init__(self, found: dict | None) -> None:
        self.found = found

    def get(self, *args: str) -> dict | None:
        return self.found


def test_doctor_warns_when_thinkube_control_would_count_litellm_installed() -> None:
    ours = Site.model_validate({"domain": "example.com"})
    elsewhere = Site.model_validate({"domain": "example.com", "namespace": "ai"})
    assert _thinkube_control({"prod": ours}, _Reader(None))[0].status == WARN  # the tree would make the ConfigMap
    assert _thinkube_control({"ai": elsewhere}, _Reader(None)) == []
    live = _thinkube_control({"ai": elsewhere}, _Reader({"kind": "ConfigMap"}))  # the playbooks' is still there
    assert live[0].status == WARN and "DROP DATABASE litellm" in live[0].detail
