"""What a sandboxed run must show for the pod to be right, as lists of problems (empty: right)."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.pod_sandbox.image import ASSETS_DIR, UI_DIR, UI_MARKER
from tests.pod_sandbox.sandbox import Container, Run, Sandbox

# LiteLLM 1.108.7 proxy_server.py, UI path selection: what it logs for each branch.
UI_READY = f"Using pre-restructured UI at {UI_DIR}"
UI_TROUBLE = ("Attempting to populate from packaged UI", "Successfully populated UI", "Falling back to packaged UI",
              "is not properly restructured", "Restructured UI directory", "Cannot restructure UI")


def ui_problems(run: Run, *, marker_status: int) -> list[str]:
    """The image's pre-built UI is served as it is, and nothing is copied at start.

    ``marker_status`` is the HTTP status of ``GET /ui/.litellm_ui_ready``: the marker exists only in the
    image's baked UI, so 200 proves LiteLLM serves that directory. (LiteLLM 1.108.7 picks the UI while
    proxy_server is imported, before its logging is set up, so its INFO line UI_READY is never printed,
    not even with --detailed_debug; the branches that copy or fall back log warnings, checked here.)"""
    log = run.text()
    problems = [f"log: {line.strip()}" for line in log.splitlines() if any(t in line for t in UI_TROUBLE)]
    if marker_status != 200:
        problems.append(f"GET /ui/{UI_MARKER} answered {marker_status}: LiteLLM does not serve the image's UI")
    copied = [str(w) for w in run.writes if w.path.startswith((UI_DIR, ASSETS_DIR, "/var/lib/litellm"))]
    problems += [f"wrote the UI at start: {w}" for w in copied[:5]]
    for mount, files in run.written_files().items():
        if mount.startswith("/var/lib/litellm"):
            problems.append(f"a volume at {mount} hides the image's UI and received {len(files)} copied file(s)")
    return problems


def write_problems(run: Run) -> list[str]:
    """Every write succeeded, and every writable mount is one the process was seen writing."""
    # EEXIST is `mkdir(..., exist_ok=True)` meeting its directory: not a failed write.
    problems = [f"failed write: {w}" for w in run.writes if w.error and w.error != "EEXIST"]
    for mount in run.volumes:
        if not any(w.error is None and (w.path == mount or w.path.startswith(mount.rstrip("/") + "/"))
                   for w in run.writes):
            problems.append(f"writable mount {mount} was never written: it is not needed")
    return problems


PROBE = """
import sys
for path in sys.argv[1:]:
    try:
        with open(path, "w") as handle:
            handle.write("probe")
        print(path, "ok")
    except OSError as error:
        print(path, error.strerror)
"""


def probe_writes(container: Container, work: Path, paths: list[str]) -> dict[str, str]:
    """Try to write each path from a process in the container's sandbox: path -> 'ok' or the error."""
    spec = copy.deepcopy(container.spec)
    spec["command"] = ["python", "-c", PROBE, *paths]
    spec.pop("args", None)
    probe = Container(spec, container.pod, container.secret, container.maps, container.image)
    run = Sandbox(probe, work).run_to_end(timeout=60)
    assert run.returncode == 0, run.text()
    found = dict(line.split(" ", 1) for line in run.text().splitlines() if line.startswith("/"))
    return found
