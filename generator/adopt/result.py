"""What adopting yields, shared by the parts that build it: site settings, notes, the secret values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One key of the site file that differs from the defaults, and where the original said so."""

    path: tuple[str, ...]  # site keys, camelCase
    value: Any
    why: str  # the comment written above it


@dataclass(frozen=True)
class Note:
    where: str  # file:line (or the object) the note is about
    what: str


@dataclass
class Adoption:
    settings: list[Setting] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    left: list[Note] = field(default_factory=list)  # in the original, not in the site: exit 1
    changed: list[Note] = field(default_factory=list)  # carried differently on purpose (the defaults' fixes)

    def set(self, path: tuple[str, ...], value: Any, why: str) -> None:  # noqa: ANN401
        self.settings = [s for s in self.settings if s.path != path]
        self.settings.append(Setting(path, value, why))

    def leave(self, where: str, what: str) -> None:
        self.left.append(Note(where, what))

    def change(self, where: str, what: str) -> None:
        self.changed.append(Note(where, what))

    def tree(self) -> dict[str, Any]:
        """The settings as the nested mapping a site file holds."""
        return nested(self.settings)


def nested(settings: list[Setting]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for setting in settings:
        node = tree
        for key in setting.path[:-1]:
            node = node.setdefault(key, {})
        node[setting.path[-1]] = setting.value
    return tree
