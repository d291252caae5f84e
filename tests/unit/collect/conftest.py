"""Helpers of the collection tests: recorded fixtures and a scripted local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "api"
KEY = "test-pseudonym-key"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


Handler = Callable[[Request], tuple[int, dict[str, str], Any]]


@dataclass
class ScriptedServer:
    """A local HTTP server answering with ``handler(request) -> (status, headers, body)``."""

    handler: Handler | None = None
    requests: list[Request] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    state = ScriptedServer()

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                params.update(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            request = Request(self.command, parts.path, params, dict(self.headers))
            state.requests.append(request)
            status, headers, body = state.handler(request)
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def load(network: str, name: str) -> Any:
    return json.loads((FIXTURES / network / name).read_text(encoding="utf-8-sig"))
