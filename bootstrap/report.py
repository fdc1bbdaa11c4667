"""What a bootstrap step did (or would do) to each object: created / updated / unchanged / deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

CREATED, UPDATED, UNCHANGED, DELETED = "created", "updated", "unchanged", "deleted"
WOULD = {CREATED: "would create", UPDATED: "would update", DELETED: "would delete", UNCHANGED: "unchanged"}


@dataclass(frozen=True)
class Action:
    service: str
    obj: str
    status: str
    detail: str = ""


@dataclass
class Report:
    """Collects actions and prints each one as it happens, so a failure shows what was already done."""

    dry_run: bool = False
    out: TextIO | None = None
    actions: list[Action] = field(default_factory=list)

    def add(self, service: str, obj: str, status: str, detail: str = "") -> None:
        action = Action(service, obj, status, detail)
        self.actions.append(action)
        if self.out is not None:
            print(self.line(action), file=self.out, flush=True)

    def line(self, action: Action) -> str:
        status = WOULD[action.status] if self.dry_run else action.status
        detail = f"  ({action.detail})" if action.detail else ""
        return f"{status:<12} {action.service:<9} {action.obj}{detail}"

    def changed(self) -> list[Action]:
        return [a for a in self.actions if a.status != UNCHANGED]

    def rows(self) -> list[dict[str, str]]:
        return [{"service": a.service, "object": a.obj, "status": WOULD[a.status] if self.dry_run else a.status,
                 "detail": a.detail} for a in self.actions]

    def lines(self) -> list[str]:
        return [self.line(action) for action in self.actions]
