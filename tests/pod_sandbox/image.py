"""The ghcr.io/berriai/litellm-non_root image as its build file lays it out, rebuilt on this machine.

Read from BerriAI/litellm ``docker/Dockerfile.non_root`` at d7fa79572c13 (the newest revision
readable here that matches the 1.108.7 package: it bakes ``logo.png``, which 1.108.7 ships, where
older revisions copy ``logo.jpg``) and ``docker/prod_entrypoint.sh``:

* the venv at /app/.venv, on PATH (scripts/install-servers.sh builds the PyPI release there, inside
  bubblewrap, so its ``#!`` lines name /app/.venv as in the image);
* ``USER 65534``, ``WORKDIR /app``, ``ENTRYPOINT ["/app/docker/prod_entrypoint.sh"]``,
  ``CMD ["--port", "4000"]``; the entrypoint ends in ``exec litellm "$@"``;
* the runtime environment below (``XDG_CACHE_HOME`` is left unset there: the cache is $HOME/.cache);
* the Admin UI baked into /var/lib/litellm/ui: the package's ``litellm/proxy/_experimental/out``
  copied (already one folder per route) with the marker ``.litellm_ui_ready``; the logo in
  /var/lib/litellm/assets; /app/.cache and /nonexistent made for nobody.

What differs from the image: the base system (/usr, /etc) is this machine's Debian, not Wolfi;
Python is Debian's 3.11, not 3.13; the Prisma CLI and engines (/opt/prisma), /app/enterprise and
/app/litellm-proxy-extras are absent (no database in these tests). LiteLLM imports from the venv's
site-packages in both.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

LITELLM_VERSION = "1.108.7"
CACHE = Path(os.environ.get("GENERATOR_CACHE", str(Path.home() / ".cache" / "litellm-gitops")))
VENV = Path(os.environ.get("LITELLM_VENV", str(CACHE / f"litellm-{LITELLM_VERSION}-app-venv")))

UI_DIR = "/var/lib/litellm/ui"
ASSETS_DIR = "/var/lib/litellm/assets"
UI_MARKER = ".litellm_ui_ready"


@dataclass(frozen=True)
class Image:
    """The image config (what `docker inspect` shows) of litellm-non_root."""

    user: int = 65534
    group: int = 65534
    workdir: str = "/app"
    entrypoint: tuple[str, ...] = ("/app/docker/prod_entrypoint.sh",)
    cmd: tuple[str, ...] = ("--port", "4000")
    env: dict[str, str] = field(default_factory=lambda: {
        "PATH": "/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PRISMA_BINARY_CACHE_DIR": "/opt/prisma/binaries",
        "PRISMA_CLI_PATH": "/opt/prisma/binaries/node_modules/.bin/prisma",
        "PRISMA_CLI_QUERY_ENGINE_TYPE": "binary",
        "HOME": "/app",
        "LITELLM_NON_ROOT": "true",
        "PRISMA_SKIP_POSTINSTALL_GENERATE": "1",
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
        "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
        "PRISMA_OFFLINE_MODE": "true",
    })
    # Directories of the image besides /app/.venv, each taken from the layer below.
    paths: tuple[str, ...] = ("/app/docker", "/app/.cache", "/nonexistent", UI_DIR, ASSETS_DIR)


IMAGE = Image()


def postgres_image(major: int) -> Image:
    """postgres:<major>-alpine as the backup's pg_dump container sees it (the pod sets command and user): the
    client programs of that major on PATH. Here they are Debian's (/usr/lib/postgresql/<major>/bin), the
    server's own major, as the image's are."""
    return Image(user=70, group=70, workdir="/", entrypoint=("docker-entrypoint.sh",), cmd=("postgres",),
                 env={"PATH": f"/usr/lib/postgresql/{major}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      "PGDATA": "/var/lib/postgresql/data"},
                 paths=())

ENTRYPOINT_SCRIPT = """#!/bin/sh
# What docker/prod_entrypoint.sh does without SEPARATE_HEALTH_APP, USE_DDTRACE or USE_NEWRELIC.
exec litellm "$@"
"""


def packaged_ui(venv: Path = VENV) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages/litellm/proxy/_experimental/out"))
    assert found, f"no packaged UI under {venv}: run scripts/install-servers.sh"
    return found[0]


def image_layer(venv: Path = VENV) -> Path:
    """The image's files besides the venv, built once per venv as the Dockerfile builds them."""
    layer = venv.parent / f"{venv.name}.image-layer"
    stamp = layer / ".complete"
    if stamp.is_file():
        return layer
    tmp = layer.with_name(layer.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    docker = tmp / "app/docker"
    docker.mkdir(parents=True)
    (docker / "prod_entrypoint.sh").write_text(ENTRYPOINT_SCRIPT)
    (docker / "prod_entrypoint.sh").chmod(0o755)
    (tmp / "app/.cache").mkdir(parents=True)
    (tmp / "nonexistent").mkdir()
    ui = tmp / UI_DIR.lstrip("/")
    shutil.copytree(packaged_ui(venv), ui)
    (ui / UI_MARKER).touch()
    assets = tmp / ASSETS_DIR.lstrip("/")
    assets.mkdir(parents=True)
    shutil.copy(packaged_ui(venv).parent.parent / "logo.png", assets / "logo.png")
    stamp_tmp = tmp / ".complete"
    stamp_tmp.touch()
    shutil.rmtree(layer, ignore_errors=True)
    tmp.rename(layer)
    return layer
