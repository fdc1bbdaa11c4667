"""Run one container of a rendered pod the way the kubelet would run it from the image, in bubblewrap.

Everything comes from the built manifests: the pod's and container's securityContext (user, group,
read-only root), each volumeMount (an emptyDir is an empty writable directory that hides whatever
the image had at that path; a configMap with subPath is that one file, read-only; a configMap
without subPath is a read-only directory of its keys), the env (secretKeyRef resolved from the
unsealed Secret; the container's env over the image's), command and args over the image's
entrypoint and cmd. The root is read-only: a write anywhere else fails with EROFS.

With ``trace=True`` the run is watched by strace (file syscalls only), so the test sees every path
the process wrote or tried to write, inside or outside the writable mounts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import egress
from tests.pod_sandbox.image import IMAGE, VENV, Image, image_layer
from tests.servers import scaled

HOST_SYSTEM = ("--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
               "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin", "--ro-bind", "/etc", "/etc",
               "--proc", "/proc", "--dev", "/dev")
# Directories the image has that are empty (made at build time for nobody; read-only in the pod).
IMAGE_EMPTY_DIRS = ("/tmp",)


def pod_spec(docs: list[dict[str, Any]], kind: str, name_prefix: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"expected one {kind} {name_prefix}*, found {len(found)}"
    return found[0]["spec"]["template"]["spec"]


def config_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


@dataclass
class Container:
    """One container of a pod spec, resolved against the image: what the kubelet would start."""

    spec: dict[str, Any]
    pod: dict[str, Any]
    secret: dict[str, str]
    maps: dict[str, dict[str, str]]
    image: Image = IMAGE

    @property
    def name(self) -> str:
        return self.spec["name"]

    def argv(self) -> list[str]:
        if "command" in self.spec:
            return [*self.spec["command"], *self.spec.get("args", [])]
        return [*self.image.entrypoint, *self.spec.get("args", self.image.cmd)]

    def env(self) -> dict[str, str]:
        env = dict(self.image.env)
        for item in self.spec.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            source = item["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                assert ref["name"] == "litellm-secrets", ref
                assert ref["key"] in self.secret, f"{item['name']}: key {ref['key']} is not in the Secret"
                env[item["name"]] = self.secret[ref["key"]]
            else:
                ref = source["configMapKeyRef"]
                env[item["name"]] = self.maps[ref["name"]][ref["key"]]
        return env

    def user(self) -> tuple[int, int]:
        merged = {**self.pod.get("securityContext", {}), **self.spec.get("securityContext", {})}
        return merged.get("runAsUser", self.image.user), merged.get("runAsGroup", self.image.group)

    def read_only_root(self) -> bool:
        return bool(self.spec.get("securityContext", {}).get("readOnlyRootFilesystem"))

    def mounts(self) -> list[dict[str, Any]]:
        return list(self.spec.get("volumeMounts", []))


@dataclass
class Run:
    """What a sandboxed container left behind: its log, exit status, volumes and traced writes."""

    log: Path
    volumes: dict[str, Path]  # mountPath -> host directory of each writable volume
    trace_dir: Path | None
    returncode: int | None = None
    writes: list["Write"] = field(default_factory=list)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def written_files(self) -> dict[str, list[str]]:
        """Files left in each writable volume, relative to its mount path."""
        return {path: sorted(str(p.relative_to(host)) for p in host.rglob("*") if p.is_file())
                for path, host in self.volumes.items()}


class Sandbox:
    """Prepare the root of one container, then start it with bubblewrap (optionally under strace)."""

    def __init__(self, container: Container, work: Path, *, venv: Path = VENV,
                 env_overrides: dict[str, str | None] | None = None,
                 args_overrides: dict[str, str] | None = None, trace: bool = False,
                 pod_volumes: dict[str, Path] | None = None) -> None:
        self.container, self.work, self.venv, self.trace = container, work, venv, trace
        # An emptyDir is the pod's, shared by its containers (an init container's output is the next one's
        # input): name -> host directory, the same for every container of one pod run.
        self.pod_volumes = pod_volumes or {}
        self.env_overrides = env_overrides or {}
        self.args_overrides = args_overrides or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.run: Run | None = None

    def command(self) -> tuple[list[str], Run]:
        c = self.container
        assert c.read_only_root(), f"{c.name}: the sandbox models a read-only root filesystem only"
        work = self.work / c.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        layer = image_layer(self.venv)
        uid, gid = c.user()
        args = [_tool("bwrap"), "--unshare-user", "--uid", str(uid), "--gid", str(gid), "--unshare-pid", "--unshare-ipc",
                "--unshare-uts", "--hostname", c.name, "--die-with-parent", "--cap-drop", "ALL", *HOST_SYSTEM]
        for path in IMAGE_EMPTY_DIRS:
            args += ["--dir", path]
        args += ["--ro-bind", str(self.venv), "/app/.venv"]
        for path in c.image.paths:
            args += ["--ro-bind", str(layer / path.lstrip("/")), path]
        volumes: dict[str, Path] = {}
        by_name = {v["name"]: v for v in c.pod.get("volumes", [])}
        for mount in c.mounts():
            volume = by_name[mount["name"]]
            target = mount["mountPath"]
            read_only = mount.get("readOnly", False)
            if "emptyDir" in volume or "persistentVolumeClaim" in volume:
                host = self.pod_volumes.get(mount["name"], work / "volumes" / mount["name"])
                host.mkdir(parents=True, exist_ok=True)
                args += ["--ro-bind" if read_only else "--bind", str(host), target]
                if not read_only:
                    volumes[target] = host
            elif "configMap" in volume:
                data = c.maps[volume["configMap"]["name"]]
                host = work / "configmaps" / mount["name"]
                host.mkdir(parents=True, exist_ok=True)
                for key, value in data.items():
                    (host / key).write_text(value)
                if "subPath" in mount:
                    args += ["--ro-bind", str(host / mount["subPath"]), target]
                else:  # a configMap volume is always read-only
                    args += ["--ro-bind", str(host), target]
            else:
                raise AssertionError(f"{c.name}: volume {mount['name']} of an unmodelled type: {volume}")
        args += ["--remount-ro", "/", "--chdir", c.spec.get("workingDir", c.image.workdir)]
        argv = c.argv()
        for flag, value in self.args_overrides.items():
            argv[argv.index(flag) + 1] = value
        trace_dir = None
        if self.trace:
            trace_dir = work / "trace"
            trace_dir.mkdir()
            args = [_tool("strace"), "-f", "-ff", "-qq", "-y", "--seccomp-bpf", "-e", f"trace={','.join(TRACED)}",
                    "-o", str(trace_dir / "t"), *args]
        run = Run(log=work / "container.log", volumes=volumes, trace_dir=trace_dir)
        return [*args, "--", *argv], run

    def environment(self) -> dict[str, str]:
        """The container's environment, exactly: bubblewrap passes its own on, so no value is in an argv."""
        # egress.env(): outbound HTTP(S) to the local trap (tests/egress.py), the one difference from the pod
        env = {**self.container.env(), **egress.env(), **self.env_overrides}  # an override of None unsets it
        return {key: value for key, value in env.items() if value is not None}

    def start(self) -> Run:
        argv, self.run = self.command()
        with open(self.run.log, "wb") as log:
            self.process = subprocess.Popen(argv, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        return self.run

    def wait(self, timeout: float) -> Run:
        assert self.process and self.run
        self.run.returncode = self.process.wait(scaled(timeout))
        self.run.writes = parse_trace(self.run.trace_dir)
        return self.run

    def stop(self) -> Run:
        assert self.process and self.run
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.run.returncode = self.process.returncode
        self.run.writes = parse_trace(self.run.trace_dir)
        return self.run

    def run_to_end(self, timeout: float = 120) -> Run:
        self.start()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.container.name} did not finish in {timeout} s: {self.run.text()[-2000:]}")


# --- what strace saw ----------------------------------------------------------------------------

TRACED = ("open", "openat", "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
          "rmdir", "symlink", "symlinkat", "link", "linkat", "truncate")
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
LINE = re.compile(r'^(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+)(?:<[^>]*>)?(?:\s+(?P<errno>E[A-Z]+))?')
PATH_ARG = re.compile(r'(?:(?:AT_FDCWD|\d+<(?P<dir>[^>]*)>),\s*)?"(?P<path>[^"]*)"')
# bubblewrap's own set-up (before the container's process starts), and the kernel's virtual files.
IGNORED = ("/newroot", "/oldroot", "newroot", "oldroot", "/proc/", "/dev/", "/sys/")


@dataclass(frozen=True)
class Write:
    call: str
    path: str
    error: str | None  # None: it succeeded

    def __str__(self) -> str:
        return f"{self.call} {self.path} -> {self.error or 'ok'}"


def parse_trace(trace_dir: Path | None) -> list[Write]:
    if trace_dir is None:
        return []
    found: set[Write] = set()
    for file in sorted(trace_dir.iterdir()):
        for line in file.read_text(errors="replace").splitlines():
            match = LINE.match(line)
            if not match:
                continue
            call, call_args = match["call"], match["args"]
            if call in ("open", "openat") and not WRITE_FLAGS.search(call_args):
                continue
            paths = list(PATH_ARG.finditer(call_args))
            if call.startswith("symlink"):
                paths = paths[-1:]  # symlink(target, linkpath): only the link is written
            for arg in paths:
                path = arg["path"]
                if arg["dir"] and not path.startswith("/"):
                    path = f"{arg['dir'].rstrip('/')}/{path}"
                if path.startswith(IGNORED) or path in {"newroot", "oldroot", "/dev/null"}:
                    continue
                found.add(Write(call, os.path.normpath(path), match["errno"]))
    return sorted(found, key=lambda w: (w.path, w.call))


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: run scripts/install-servers.sh"
    return found
