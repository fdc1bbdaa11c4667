"""Git over smart HTTP on 127.0.0.1: ``git http-backend`` behind a threaded WSGI server in this process.

source-controller clones with go-git, which speaks only the smart protocol, so a static file server
would not do. Repositories under ``root`` are served read-only at ``http://127.0.0.1:<port>/<name>``; with
``token``, only to a request that shows it (HTTP Basic, any user name, as Gitea takes an access token), as a
Gitea that requires sign-in does.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.servers import HOST, free_port

CGI_VARS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "REMOTE_ADDR")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        self.server.requests.append(format % args)  # type: ignore[attr-defined]


class GitServer:
    def __init__(self, root: Path, token: str | None = None):
        self.root = root
        self.token = token
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    @property
    def requests(self) -> list[str]:
        return self._httpd.requests if self._httpd else []  # type: ignore[attr-defined]

    def _signed_in(self, environ: dict) -> bool:
        scheme, _, encoded = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        try:
            _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        return scheme == "Basic" and password == self.token

    def _app(self, environ: dict, start_response):  # noqa: ANN202 - WSGI
        if self.token is not None and not self._signed_in(environ):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        env = {"GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH": os.environ["PATH"],
               "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", "")}
        env.update({k: environ.get(k, "") for k in CGI_VARS})
        if environ.get("HTTP_CONTENT_ENCODING"):
            env["HTTP_CONTENT_ENCODING"] = environ["HTTP_CONTENT_ENCODING"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env["CONTENT_LENGTH"] = str(len(body))
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60).stdout
        head, sep, rest = out.partition(b"\r\n\r\n")
        if not sep:
            head, sep, rest = out.partition(b"\n\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = value.strip()
            elif key:
                headers.append((key, value.strip()))
        start_response(status, headers)
        return [rest]

    def __enter__(self) -> "GitServer":
        self._httpd = make_server(HOST, self.port, self._app, server_class=_Server, handler_class=_Quiet)
        self._httpd.requests = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="git-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=10)
