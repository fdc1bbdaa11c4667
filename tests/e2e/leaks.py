"""Watch every descendant process of the test: command lines always, environments of those that
must not hold secrets. Read from /proc, sampled in a background thread."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

# Processes that legitimately hold secret values in their environment or memory.
MAY_HOLD = ("sops", "kubeseal", "litellm")
# The pod's container holds its env by design, from its first process on: the image's entrypoint shell
# (until it execs litellm; a sample can land before the exec on a busy machine) and the proxy itself.
CONTAINER = ("/litellm", "/app/docker/prod_entrypoint.sh")


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parents[int(entry)] = _ppid(int(entry))
    found, frontier = [], {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        found.extend(children)
        frontier = children
    return found


@dataclass
class ProcessWatch:
    samples: int = 0
    argv: dict[str, str] = field(default_factory=dict)  # "pid:argv0" -> argv (joined)
    environ: dict[str, bytes] = field(default_factory=dict)  # of processes that must not hold secrets
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "ProcessWatch":
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for pid in _descendants(me):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    continue
                if not cmd:
                    continue
                name = os.path.basename(cmd.split(" ", 1)[0])
                self.argv[f"{pid}:{name}"] = cmd
                in_container = any(marker in cmd for marker in CONTAINER)
                if not in_container and not any(tool in cmd.split(" ", 2)[0] for tool in MAY_HOLD):
                    try:
                        self.environ[f"{pid}:{name}"] = Path(f"/proc/{pid}/environ").read_bytes()
                    except OSError:
                        pass
            self.samples += 1
            self._stop.wait(0.005)


SHIMMED = ("kubectl", "kubeconform", "kubeseal", "sops")


def tool_shims(directory: Path, log: Path) -> dict[str, str]:
    """Wrappers that record every invocation's argv (one line each) and exec the real tool: unlike the
    sampler, they see every short-lived sops or kubeseal call, however loaded the machine. Returns the
    environment that makes the generator use them."""
    from generator.tools import find

    directory.mkdir(parents=True, exist_ok=True)
    for name in SHIMMED:
        real = find(name)
        assert real is not None, f"{name} is not installed"
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "$GENERATOR_SHIM_LOG"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
    return {"GENERATOR_TOOLS_PATH": str(directory), "GENERATOR_SHIM_LOG": str(log)}


def shim_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.is_file() else []
