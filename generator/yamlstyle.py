"""The one YAML dumper configuration: two-space indentation, indented sequences, block literals for
multi-line strings, no anchors. ``yamlio.dump`` writes with it and ``fastyaml`` asks it how to write each
scalar, so both write the same bytes."""

from __future__ import annotations

from typing import Any

import yaml


class Dumper(yaml.SafeDumper):
    """Two-space indentation, indented sequences, block literals for multi-line strings."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:  # never emit anchors: every file reads on its own
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str_representer)
