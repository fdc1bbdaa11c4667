"""Progress of long work on a terminal: one line rewritten in place on stderr (``[3/12] building overlays/x``).

Only when stderr is a terminal: a pipe, a log or CI gets the commands' plain lines and nothing else.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Progress:
    def __init__(self, total: int, verb: str, stream: TextIO | None = None) -> None:
        self.total, self.verb, self.done = total, verb, 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and total > 1
        self._lock = threading.Lock()  # advanced from a thread pool

    def advance(self, item: str) -> None:
        with self._lock:
            self.done += 1
            if self.live:
                self.stream.write(f"\r\033[K[{self.done}/{self.total}] {self.verb} {item}")
                self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
