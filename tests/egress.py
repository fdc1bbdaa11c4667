"""The tests' only way out: a local HTTP(S) proxy that refuses every request and records where it was going.

Every LiteLLM process the tests start (tests/e2e/pod.py's Proxy, the pod sandbox) gets ``HTTPS_PROXY`` and
``HTTP_PROXY`` pointing here, with ``NO_PROXY`` for the loopback addresses the test servers listen on. LiteLLM
1.108.7 honours them for its outbound calls (httpx's environment proxies; its own HTTP handler mounts them
too), so what it tries to reach on the internet (its licence server for a licence it cannot verify offline,
the model cost map unless LITELLM_LOCAL_MODEL_COST_MAP is set) is refused on this machine, at once, as an
air-gapped cluster refuses it, and a test can assert that the attempt happened.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1,localhost,::1"


class _Refuse(BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        target = self.path if self.command == "CONNECT" else (urlsplit(self.path).netloc or self.path)
        self.server.trap.record(target)  # type: ignore[attr-defined]
        self.send_error(403, "egress refused by the test harness")

    do_CONNECT = do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _refuse

    def log_message(self, *args: object) -> None:
        pass


class EgressTrap:
    def __init__(self) -> None:
        self.targets: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def record(self, target: str) -> None:
        with self._lock:
            self.targets.append(target)

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.targets)

    @property
    def url(self) -> str:
        assert self._server is not None, "the egress trap is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The variables that send a process's outbound HTTP(S) here (both spellings: libraries differ)."""
        return {"HTTPS_PROXY": self.url, "HTTP_PROXY": self.url, "https_proxy": self.url, "http_proxy": self.url,
                "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK}

    def __enter__(self) -> "EgressTrap":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
        self._server.daemon_threads = True
        self._server.trap = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, name="egress-trap", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


_active: EgressTrap | None = None


def activate(trap: EgressTrap | None) -> None:
    global _active
    _active = trap


def env() -> dict[str, str]:
    """The running trap's variables, for a process the tests start; {} outside a test session."""
    return _active.env() if _active is not None else {}


def active() -> EgressTrap:
    assert _active is not None, "no egress trap: tests/conftest.py starts one for the session"
    return _active
