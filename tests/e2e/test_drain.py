"""Issue 11: a rollout drains the pod instead of cutting its requests.

The real LiteLLM proxy runs from the rendered site; a slow completion (the mock answers after a delay) is in
flight when the kubelet would run the rendered preStop hook. The hook is run as the kubelet runs it: its
exec command, in the container's env (the token comes from the Secret through that env, never from git). It
must take the pod out of the Service at once (readiness 503), let the request finish with its answer, and
return as soon as nothing is in flight; then SIGTERM ends the process within the rendered exit window.
A caller without the token gets 401 and changes nothing (the route is public).

The drain and exit windows are rendered scaled with the load (tests/servers.py ``scaled``), as every other
deadline: the assertions compare with the windows the site was rendered with, so a hook that waits out its
window, or a process that needs the kubelet's SIGKILL, still fails on a loaded machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.pod import http
from tests.e2e.rendered import chat, container_env, mocked, proxy, render, rendered_config, running, serving_container
from tests.pod_sandbox.image import VENV
from tests.servers import load_factor, scaled

pytestmark = pytest.mark.e2e
DELAY = 6  # seconds the in-flight completion takes
DRAIN_SECONDS, EXIT_SECONDS = 40, 15  # on an idle machine; rendered scaled with the load
RETURN_SECONDS = 5  # from the last answer to the hook's return (LiteLLM's poll of its in-flight count, Python's exit)
SECRET = {"LITELLM_MASTER_KEY": "sk-" + "d" * 40, "LITELLM_SALT_KEY": "salt-" + "d" * 20, "ADMIN_PASSWORD": "ui-pw",
          "CLIENT_SECRET": "client-secret", "PROXY_ADMIN_ID": "0b7e4a52-5c1e-4d6f-9a0e-3f6b2d8c1a47"}


def site(drain_seconds: int, exit_seconds: int) -> str:
    return f"""\
domain: example.com
gitops: {{flux: {{url: "https://git.example.org/gitops.git"}}}}
cache: {{enabled: false}}
drain: {{seconds: {drain_seconds}, exitSeconds: {exit_seconds}}}
models:
  - {{name: slow, model: openai/gpt-4o-mini}}
"""


def _in_flight(url: str) -> int:
    status, _, body = http("GET", f"{url}/health/backlog", headers={"Authorization": f"Bearer {SECRET['LITELLM_MASTER_KEY']}"},
                           timeout=10)
    assert status == 200, body
    return json.loads(body)["in_flight_requests"] - 1  # this request itself


def _wait(condition, what: str, seconds: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + scaled(seconds)
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_prestop_hook_drains_in_flight_requests(tmp_path: Path) -> None:
    load = load_factor()
    drain_seconds, exit_seconds = round(DRAIN_SECONDS * load), round(EXIT_SECONDS * load)
    print(f"load factor {load:.2f}: drain window {drain_seconds} s, exit window {exit_seconds} s")
    docs = render(tmp_path / "repo", "drain", site(drain_seconds, exit_seconds))
    container = serving_container(docs)
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == drain_seconds + exit_seconds
    env = container_env(container, SECRET)
    assert env["GRACEFUL_SHUTDOWN_TIMEOUT"] == str(drain_seconds)
    hook = container["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[0] == "python"  # the image's venv Python, first on its PATH
    target = proxy(tmp_path, mocked(rendered_config(docs), mock_delay=DELAY), env)

    with running(target):
        url = target.url
        # a caller without the token: refused, and the pod stays in service
        status, _, _ = http("GET", f"{url}/health/drain", headers={"X-Drain-Token": "guess"})
        assert status == 401
        assert http("GET", f"{url}/health/readiness")[0] == 200

        answer: dict = {}

        def ask() -> None:
            answer.update(zip(("status", "body"), chat(target, SECRET["LITELLM_MASTER_KEY"], "slow")))
            answer["at"] = time.monotonic()

        slow = threading.Thread(target=ask)
        slow.start()
        _wait(lambda: _in_flight(url) >= 1, "the slow completion to be in flight")

        started = time.monotonic()
        script = hook[2].replace("127.0.0.1:4000", url.removeprefix("http://"))  # difference 3: the local port
        assert script != hook[2]
        run = subprocess.Popen([str(VENV / "bin" / "python"), hook[1], script], env={**env, "PATH": os.environ["PATH"]},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait(lambda: http("GET", f"{url}/health/readiness", timeout=5)[0] == 503 or run.poll() is not None,
              "readiness to turn 503")
        assert run.poll() is None, f"the hook returned while a request was in flight: {run.communicate()}"
        assert http("GET", f"{url}/health/readiness", timeout=5)[0] == 503  # out of the Service, still serving
        out, err = run.communicate(timeout=scaled(drain_seconds + 10))
        returned = time.monotonic()
        took = returned - started
        assert run.returncode == 0, err
        slow.join(timeout=scaled(10))
        assert answer.get("status") == 200, answer
        assert answer["body"]["choices"][0]["message"]["content"] == "Hello from the mock"
        result = json.loads(out.strip().splitlines()[-1])
        assert result["status"] == "drained" and result["drained_requests"] >= 1, result
        # it returned once nothing was in flight: soon after the last answer, and well before its window ran out
        after_answer = returned - answer["at"]
        assert after_answer < scaled(RETURN_SECONDS), f"the hook returned {after_answer:.1f}s after the last answer"
        assert took < drain_seconds, f"the hook waited {took:.1f}s: it should return once nothing is in flight"

        stopping = time.monotonic()
    # the kubelet's SIGTERM (running() stops the proxy so): out well within the rendered exit window
    stopped = time.monotonic() - stopping
    assert target.process is not None and target.process.returncode is not None
    assert target.process.returncode != -signal.SIGKILL, "the proxy did not exit on SIGTERM: it was killed"
    assert stopped < exit_seconds, f"the proxy took {stopped:.1f}s to exit (window {exit_seconds} s)"
