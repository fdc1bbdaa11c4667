"""A TCP listener on its own threads, for the tests' stand-ins (a black hole, a relay, a TLS front): it accepts
until stopped and hands each connection to ``handle``; leaving the ``with`` block stops it and joins its threads."""

from __future__ import annotations

import socket
import threading


class ThreadedListener:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def start_thread(self, target, *args: object) -> None:  # noqa: ANN001
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def __enter__(self):  # noqa: ANN204 - the subclass
        self.start_thread(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.handle(connection)
