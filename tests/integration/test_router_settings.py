"""router_settings as LiteLLM 1.108.7 itself reads them: every rendered key is an argument of litellm.Router,
and the Router the proxy would build from the rendered config accepts the values (strategy, fallbacks)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import MINIMAL_SITE, build_file_tree, generator
from tests.keys import sealing_pair
from tests.pod_sandbox.image import VENV

pytestmark = pytest.mark.tools

SITE = MINIMAL_SITE + """\
models:
  - {name: gpt, model: openai/gpt-4o, apiKeySecret: OPENAI_API_KEY}
  - {name: claude, model: anthropic/claude-3-5-sonnet-20240620, apiKeySecret: ANTHROPIC_API_KEY}
router:
  routingStrategy: least-busy
  numRetries: 2
  timeout: 600
  retryAfter: 5
  allowedFails: 3
  cooldownTime: 30
  fallbacks:
    - {model: gpt, to: [claude]}
  contextWindowFallbacks:
    - {model: claude, to: [gpt]}
"""

# runs in LiteLLM's own venv (the image's), on the rendered config.yaml: what proxy_server.py does with it
PROBE = """
import json, sys, yaml, litellm
config = yaml.safe_load(open(sys.argv[1]))
settings = config["router_settings"]
valid = set(litellm.Router.get_valid_args())
models = [{**m, "litellm_params": {**m["litellm_params"], "api_key": "not-used"}} for m in config["model_list"]]
router = litellm.Router(model_list=models, **settings)
print(json.dumps({"unknown": sorted(set(settings) - valid), "strategy": router.routing_strategy,
                  "retries": router.num_retries, "timeout": router.timeout, "fallbacks": router.fallbacks,
                  "context": router.context_window_fallbacks}))
"""


def test_litellm_builds_its_router_from_the_rendered_settings(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    cert, _ = sealing_pair(tmp_path / "keys")
    build_file_tree(root, {"sites/r/site.yaml": SITE})
    (root / "sites/r/sealing-cert.pem").write_bytes(cert.read_bytes())
    result = generator(root, "render", "--site", "r")
    assert result.code == 0, result.text
    config = root / "overlays/r/app/config.yaml"
    assert yaml.safe_load(config.read_text())["router_settings"]["fallbacks"] == [{"gpt": ["claude"]}]
    probe = subprocess.run([str(VENV / "bin" / "python"), "-c", PROBE, str(config)], capture_output=True, text=True,
                           timeout=180, env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"})
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen["unknown"] == [], seen
    assert (seen["strategy"], seen["retries"], seen["timeout"]) == ("least-busy", 2, 600)
    assert seen["fallbacks"] == [{"gpt": ["claude"]}] and seen["context"] == [{"claude": ["gpt"]}]
