"""Init containers that wait until a TCP service (PostgreSQL, S3) accepts connections."""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import hardened_container_security

# Run by the site's own LiteLLM image, whose venv Python is on PATH: no second image to mirror.
PYTHON_WAIT = (
    "import socket, sys, time\n"
    "host, port = sys.argv[1], int(sys.argv[2])\n"
    "while True:\n"
    "    try:\n"
    "        socket.create_connection((host, port), timeout=2).close()\n"
    "        break\n"
    "    except OSError:\n"
    "        print(f'waiting for {host}:{port}', flush=True)\n"
    "        time.sleep(2)\n"
)
WAIT_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}


def wait_for_container(site: Site, name: str, host: str, port: int) -> dict[str, Any]:
    if site.wait_for.image is None:
        command = ["python", "-c", PYTHON_WAIT, host, str(port)]
    else:  # an image of the operator's choosing, with a shell and nc (busybox and the like)
        command = ["sh", "-c", f"until nc -z -w 2 {host} {port}; do echo waiting for {host}:{port}; sleep 2; done"]
    return {
        "name": name,
        "image": site.wait_image,
        "imagePullPolicy": site.image.pull_policy if site.wait_for.image is None else "IfNotPresent",
        "command": command,
        "resources": WAIT_RESOURCES,
        "securityContext": hardened_container_security(),
    }
