"""The pure rendering core: site models in, ``{relative path: bytes}`` out. No disk, no network."""

from __future__ import annotations

from generator.render.base import render_base
from generator.render.fleet import render_fleet
from generator.render.site import render_site

Files = dict[str, bytes]

__all__ = ["Files", "render_base", "render_fleet", "render_site"]
