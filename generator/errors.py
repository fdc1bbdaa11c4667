"""The one error tree. Every expected failure is a GeneratorError with a message for the user.

The CLI's top-level handler prints ``error: <message>`` and exits with ``exit_code``.
Anything that is not a GeneratorError is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """One exit status per kind of outcome, for every command (docs/cli.md prints this table)."""

    OK = 0
    FINDINGS = 1  # the check ran and found something: drift, a stale tree, a plaintext secret, a failed step
    USAGE = 2  # bad input: an option, an argument, a site file, a name; nothing was written
    UNREACHABLE = 3  # a cluster or a service could not be reached, or did not answer in time
    INTERRUPTED = 130  # Ctrl-C


EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success; nothing to report (or the report is all good)",
    ExitCode.FINDINGS: "findings or a failed step: drift (diff), a stale tree (render --check, schema --check), "
                       "a plaintext secret (audit), a missing tool (doctor), a site that could not be read (status), "
                       "what adopt could not carry, a tool, a write or a bootstrap step that failed",
    ExitCode.USAGE: "bad input: an option, an argument, a site file or a name; nothing was written",
    ExitCode.UNREACHABLE: "a cluster could not be reached or refused the request "
                          "(diff, doctor --cluster, cert fetch, site new --fetch-cert, adopt), or a service bootstrap "
                          "or restore talks to could not be reached or did not answer in time (no connection, TLS, "
                          "timeout)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


class GeneratorError(Exception):
    """An expected failure; the message says what failed, where, and what to do."""

    exit_code: int = ExitCode.FINDINGS

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ServiceError(GeneratorError):
    """A service bootstrap or restore talks to failed a request (exit 1), or was never reached: no connection, a
    TLS handshake that failed, no answer within the timeout (``unreachable``, exit 3, as an unreachable cluster)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        if unreachable:
            self.exit_code = ExitCode.UNREACHABLE


class UsageError(GeneratorError):
    """Bad input from the user (options, site files): exit status 2."""

    exit_code = ExitCode.USAGE


class SiteError(UsageError):
    """An invalid site file. Names the file, the line where known, the field path and the problem."""

    def __init__(self, file: Path | str, problem: str, *, field: str = "", line: int | None = None) -> None:
        self.file = str(file)
        self.field = field
        self.line = line
        self.problem = problem
        where = self.file if line is None else f"{self.file}:{line}"
        what = f"{field}: {problem}" if field else problem
        super().__init__(f"{where}: {what}")

    @classmethod
    def every(cls, problems: "list[SiteError]") -> "SiteError":
        """All the problems found in one input, each on its own line; the first one's fields stand for them."""
        first = problems[0]
        if len(problems) > 1:
            first.message = "\n".join(problem.message for problem in problems)
            first.args = (first.message,)
        return first


class ToolMissing(GeneratorError):
    """A required external tool was not found."""

    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} not found: {hint}")
        self.tool = tool


class ToolFailed(GeneratorError):
    """An external tool ran and failed."""


class ValidationFailed(GeneratorError):
    """Rendered manifests failed kustomize or kubeconform."""


class WriteFailed(GeneratorError):
    """The output tree could not be written; the previous tree is intact."""


class ClusterError(GeneratorError):
    """The live cluster could not be read or refused the dry-run: exit 3 (kubectl diff's 'more than 1')."""

    exit_code = ExitCode.UNREACHABLE
