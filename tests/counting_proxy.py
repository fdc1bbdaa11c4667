"""A recording HTTP proxy for tests: sits between a client and SeaweedFS's S3/IAM port and
records every request (method, path, query, IAM ``Action``) so a test can tell from the wire
what the client asked the service to do.

The request is forwarded unchanged, Host header included: SigV4 signs the Host the client
sent (the proxy's address), and SeaweedFS checks the signature against the Host it receives,
so rewriting it to the upstream address would break every signature.

An optional ``hook(record)`` runs after the upstream answered and before the answer goes back
to the client (a test can SIGKILL the client there: the service did the work, the client never
learns it).
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}
IAM_WRITE_PREFIXES = ("Create", "Put", "Delete", "Update", "Attach", "Detach", "Add", "Remove", "Set", "Tag", "Untag")


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    query: str
    action: str | None  # the IAM/STS Action= of a form request, if any
    status: int

    @property
    def is_iam(self) -> bool:
        return self.action is not None

    @property
    def writes(self) -> bool:
        """True for any request that may change state on the server."""
        if self.is_iam:
            return self.action.startswith(IAM_WRITE_PREFIXES)
        return self.method not in ("GET", "HEAD", "OPTIONS")

    def __str__(self) -> str:
        what = f"IAM {self.action}" if self.is_iam else f"{self.method} {self.path}{'?' + self.query if self.query else ''}"
        return f"{what} -> {self.status}"


class CountingProxy:
    """``with CountingProxy(upstream_host, upstream_port) as proxy: ... proxy.url ... proxy.records``"""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.records: list[Record] = []
        self.hook: Callable[[Record], None] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="counting-proxy", daemon=True)

    def __enter__(self) -> "CountingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def snapshot(self) -> int:
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> list[Record]:
        with self._lock:
            return list(self.records[mark:])

    def _record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (ConnectionResetError, BrokenPipeError):
                    pass  # the client was killed mid-request: exactly what some tests do

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                split = urlsplit(self.path)
                action = None
                form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
                params = parse_qs(split.query)
                if form:
                    params.update(parse_qs(body.decode("utf-8", "replace")))
                if "Action" in params:
                    action = params["Action"][0]
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                            continue
                        upstream.putheader(name, value)  # Host included, unchanged: it is signed
                    if body or self.command in ("PUT", "POST"):
                        upstream.putheader("Content-Length", str(len(body)))
                    upstream.endheaders(body or None)
                    response = upstream.getresponse()
                    data = response.read()
                    status, reason, headers = response.status, response.reason, response.getheaders()
                finally:
                    upstream.close()
                record = Record(self.command, split.path, split.query, action, status)
                proxy._record(record)
                if proxy.hook is not None:
                    proxy.hook(record)
                try:
                    self._relay(status, reason, headers, data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client is gone (killed by a test hook)

            def _relay(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
                self.log_request(status)
                self.send_response_only(status, reason)  # no second Server/Date: the upstream's are relayed
                for name, value in headers:
                    if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                        continue
                    self.send_header(name, value)
                if self.command == "HEAD":
                    length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _forward

        return Handler
