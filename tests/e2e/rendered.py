"""The real LiteLLM proxy run from a rendered site: the Deployment's container args and env, the ConfigMap's
config.yaml, on a local port, outside the pod sandbox (these tests are about what LiteLLM does with the
settings, tests/e2e/test_pod_sandbox.py about the pod around it).

What differs from the pod, and only this:
  1. DATABASE_URL is unset (LiteLLM's Prisma engines cannot be downloaded here);
  2. every model gets ``mock_response`` (and ``mock_delay`` where a test asks) and a dummy api_key: no provider;
  3. --port is a free local port, --config the rendered config.yaml written to disk;
  4. LITELLM_LOCAL_MODEL_COST_MAP=True, so the proxy does not fetch the cost map from the internet.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.pod import LITELLM, Proxy, build, http, one
from tests.helpers import build_file_tree, generator
from tests.servers import free_port

DROPPED_ENV = {"DATABASE_URL"}  # difference 1
LOCAL_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # difference 4


def render(root: Path, name: str, site_yaml: str, *, env: dict[str, str] | None = None,
           extra: dict[str, str | bytes] | None = None) -> list[dict[str, Any]]:
    """Write the site, render it with the generator, and build its overlay with kustomize."""
    build_file_tree(root, {f"sites/{name}/site.yaml": site_yaml, **(extra or {})})
    result = generator(root, "render", "--site", name, "--no-validate", env=env)
    assert result.code == 0, result.text
    return build(root / f"overlays/{name}")


def serving_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(docs, "Deployment", "litellm")["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == "litellm")


def rendered_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(docs, "ConfigMap", "litellm-config")["data"]["config.yaml"])


def container_env(container: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """The env the kubelet would give the container, litellm-secrets being ``secret``."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if item["name"] in DROPPED_ENV:
            continue
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "litellm-secrets" and ref["key"] in secret, f"{item['name']}: {ref} not provided"
            env[item["name"]] = secret[ref["key"]]
    return {**env, **LOCAL_ENV}


def mocked(config: dict[str, Any], **params: Any) -> dict[str, Any]:
    """Difference 2: each model answers itself (params such as mock_delay go to every model)."""
    models = [{**m, "litellm_params": {**m["litellm_params"], "api_key": "not-used", "mock_response": "Hello from the mock",
                                       **params}} for m in config["model_list"]]
    return {**config, "model_list": models}


def proxy(work: Path, config: dict[str, Any], env: dict[str, str], name: str = "litellm",
          program: Path = LITELLM) -> Proxy:
    """A proxy with the container's args: only --port and --config point at local things (difference 3)."""
    path = work / f"{name}-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return Proxy(["--port", str(free_port()), "--config", str(path)], env, work / f"{name}.log", program=program)


@contextlib.contextmanager
def running(*proxies: Proxy):
    """Start the proxies side by side (each takes most of a CPU for a while) and stop them all."""
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(len(proxies)) as pool:
            futures = [pool.submit(p.__enter__) for p in proxies]
        for started, future in zip(proxies, futures):
            if future.exception() is None:
                stack.push(started.__exit__)
        for future in futures:
            future.result()  # the first start failure, after every started proxy is set to stop
        yield proxies


def chat(target: Proxy, key: str, model: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    status, _, body = http("POST", f"{target.url}/v1/chat/completions",
                           {"model": model, "messages": [{"role": "user", "content": "What is GitOps?"}]},
                           {"Authorization": f"Bearer {key}"}, timeout=timeout)
    try:
        return status, json.loads(body or b"{}")
    except json.JSONDecodeError:
        return status, {"raw": body.decode(errors="replace")}
