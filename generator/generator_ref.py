"""Which ref of the generator a GitOps repository's CI should install: one that exists.

The generator's own checkout decides: its version tag ``v<version>`` when that tag points at the commit it runs
from (``make release`` made it), else that commit itself. A generator that does not run from its own git
checkout (installed from a wheel) cannot tell, and the operator names the ref.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator import __version__, proc
from generator.errors import UsageError
from generator.tools import PROJECT_ROOT


@dataclass(frozen=True)
class GeneratorRef:
    ref: str  # what the CI fetches: a tag name or a full commit id
    commit: str  # the commit it names
    kind: str  # "tag" or "commit"
    dirty: bool = False  # the checkout has changes to tracked files: CI installs the commit without them

    def describe(self) -> str:
        if self.kind == "tag":
            return f"{self.ref} (the generator's release tag, at {self.commit[:12]})"
        return f"{self.ref} (the commit this generator runs from; make release tags v{__version__})"


def version_tag() -> str:
    return f"v{__version__}"


def current_ref(root: Path = PROJECT_ROOT) -> GeneratorRef:
    """The version tag when it points at HEAD of the generator's checkout, else HEAD's commit id."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        raise UsageError(f"the generator does not run from its own git checkout ({root}), so it cannot tell which "
                         "ref CI should fetch; name it with --generator-ref (a tag or commit of the generator)")
    head = _git(root, "rev-parse", "--verify", "HEAD^{commit}")
    if head is None:
        raise UsageError(f"{root}: the generator's checkout has no commit yet; name the ref with --generator-ref")
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    tag = version_tag()
    if _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}") == head:
        return GeneratorRef(tag, head, "tag", dirty)
    return GeneratorRef(head, head, "commit", dirty)


def _git(root: Path, *args: str) -> str | None:
    result = proc.run(["git", "-C", root, *args], check=False, timeout=30)
    return result.text.strip() if result.returncode == 0 else None
