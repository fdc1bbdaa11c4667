"""Emulate the LiteLLM pod from the rendered manifests: what kubelet would run, run locally."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from generator.tools import find
from tests import egress
from tests.pod_sandbox import VENV, Container, Run, Sandbox
from tests.servers import scaled

# The venv is built at /app/.venv as in the image; outside the sandbox its scripts run through its python.
LITELLM = VENV / "bin" / "litellm"


def build(overlay: Path) -> list[dict[str, Any]]:
    out = subprocess.run([str(find("kubectl")), "kustomize", str(overlay)], capture_output=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[dict[str, Any]], kind: str, name_prefix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"expected one {kind} {name_prefix}*, found {len(found)}"
    return found[0]


def unseal(sealed: dict[str, Any], private_key: Path) -> dict[str, str]:
    """Decrypt the rendered SealedSecret offline with the real kubeseal, like the controller would."""
    result = subprocess.run([str(find("kubeseal")), "--recovery-unseal", "--recovery-private-key", str(private_key),
                             "--format", "json"], input=json.dumps(sealed).encode(), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    return {k: base64.b64decode(v).decode() for k, v in json.loads(result.stdout)["data"].items()}


def http(method: str, url: str, body: dict | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


class Proxy:
    """The real LiteLLM proxy from PyPI, started with the pod's args and env on a local port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, program: Path = LITELLM) -> None:
        self.args, self.env, self.log_path, self.program = args, env, log, program
        self.process: subprocess.Popen[bytes] | None = None
        port_index = args.index("--port") + 1
        self.url = f"http://127.0.0.1:{args[port_index]}"

    def __enter__(self) -> "Proxy":
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.log_path.parent), "LANG": "C.UTF-8",
                **egress.env()}
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(VENV / "bin" / "python"), str(self.program), *self.args],
                                        env={**base, **self.env}, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_until_live(self.url, self.process, self.log_path)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)
        self.log.close()


def wait_until_live(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + scaled(seconds)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"litellm exited {process.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            if http("GET", f"{url}/health/liveliness", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"litellm did not start: {log.read_text(errors='replace')[-3000:]}")


class PodProxy:
    """The serving container of the rendered Deployment, in the pod sandbox, on a local port."""

    def __init__(self, container: Container, work: Path, port: int, *, env_overrides: dict[str, str | None] | None = None,
                 trace: bool = True) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.sandbox = Sandbox(container, work, env_overrides=env_overrides, args_overrides={"--port": str(port)},
                               trace=trace)
        self.run: Run | None = None

    def __enter__(self) -> "PodProxy":
        self.run = self.sandbox.start()
        try:
            wait_until_live(self.url, self.sandbox.process, self.run.log)
        except BaseException:
            self.sandbox.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.run = self.sandbox.stop()
