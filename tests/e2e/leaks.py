"""Watch every descendant process of the test: command lines always, environments of those that
must not hold secrets. Read from /proc, sampled in a background thread."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.pod_sandbox.image import IMAGE, VENV

# Tools that legitimately hold secret values in their environment or memory, by the executable's own name exactly:
# never a substring of a path, which would exempt every process of a clone under a directory named like a tool.
MAY_HOLD = frozenset({"sops", "kubeseal"})
# The pod's container holds its env by design, from its first process on: the sandbox that starts the image's
# entrypoint (bubblewrap, under strace when traced: it passes its environment on), the entrypoint shell (until it
# execs litellm; a sample can land before the exec on a busy machine), the proxy and whatever it starts. A
# container's first process is recognised by its exact argv, never by a path fragment; all below it is in it.
ENTRYPOINT = IMAGE.entrypoint[0]  # /app/docker/prod_entrypoint.sh
LITELLM_PROGRAMS = frozenset({"/app/.venv/bin/litellm", str(VENV / "bin" / "litellm")})  # in the sandbox, outside it
SANDBOX_LAUNCHERS = frozenset({"bwrap", "strace"})
SHELLS = frozenset({"sh", "dash", "bash"})


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _parents() -> dict[int, int]:
    return {int(entry): _ppid(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}


def _descendants(root: int, parents: dict[int, int] | None = None) -> list[int]:
    parents = _parents() if parents is None else parents
    found, frontier = [], {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        found.extend(children)
        frontier = children
    return found


def _argv(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")] if raw.strip(b"\0") else []


def container_root(argv: list[str]) -> bool:
    """The first process of a container: the sandbox launched on the image's entrypoint, the entrypoint itself
    (as its #! line runs it), or the LiteLLM proxy program (run by a Python, as its #! line does, or directly)."""
    if not argv:
        return False
    program = os.path.basename(argv[0])
    if program in SANDBOX_LAUNCHERS:  # the pod sandbox: whatever it runs (the entrypoint, a write probe) is the pod
        return "--" in argv and (argv[argv.index("--") + 1:][:1] == [ENTRYPOINT] or _binds_the_image_venv(argv))
    if argv[0] == ENTRYPOINT or (program in SHELLS and argv[1:2] == [ENTRYPOINT]):
        return True
    return argv[0] in LITELLM_PROGRAMS or (program.startswith("python") and argv[1:2] != [] and argv[1] in LITELLM_PROGRAMS)


def _binds_the_image_venv(argv: list[str]) -> bool:
    """bubblewrap's options of the pod sandbox (tests/pod_sandbox): the image's venv bound at /app/.venv."""
    end = argv.index("--") if "--" in argv else len(argv)
    return any(argv[i] == "--ro-bind" and argv[i + 2] == "/app/.venv" for i in range(end - 2))


def may_hold(argv: list[str], in_container: bool) -> bool:
    """Whether a process may hold secret values in its environment (then it is not read)."""
    return in_container or (bool(argv) and os.path.basename(argv[0]) in MAY_HOLD)


def _below(pid: int, group: set[int], parents: dict[int, int]) -> bool:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = parents.get(pid, -1)
        if pid in group:
            return True
    return False


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
            self.sample(me)
            self.samples += 1
            self._stop.wait(0.005)

    def sample(self, root: int) -> None:
        """One look at every descendant of ``root``."""
        parents = _parents()
        seen: dict[int, list[str]] = {}
        for pid in _descendants(root, parents):
            try:
                argv = _argv(pid)
            except OSError:
                continue
            if argv:
                seen[pid] = argv
        containers = {pid for pid, argv in seen.items() if container_root(argv)}  # their first processes
        for pid, argv in seen.items():
            name = os.path.basename(argv[0])
            self.argv[f"{pid}:{name}"] = " ".join(argv)
            if not may_hold(argv, pid in containers or _below(pid, containers, parents)):
                try:
                    self.environ[f"{pid}:{name}"] = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    pass


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
