"""The loopback HTTP server the OpenAI and Anthropic stubs share: lifecycle, routing, JSON and SSE."""

from __future__ import annotations

import json
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from clude.llm.base import Message, ToolSpec
from clude.llm.scripted import Response, Script, ScriptFunction


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined on close, so none outlives the stub
    block_on_close = True
    request_queue_size = 64  # a CLI client may open several connections at once

    def __init__(self, stub: "StubServer", port: int):
        self.stub = stub
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close idle keep-alive connections so their handler threads end."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an abandoned connection never holds a thread forever

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.stub.verbose:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        stub: StubServer = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parts = urlsplit(self.path)
        record = {"method": method, "path": parts.path, "query": parts.query,
                  "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with stub.lock:
            stub.requests.append(record)
        exchange = Exchange(self, record)
        try:
            stub.handle(exchange)
        except Exception as error:  # a broken script must reach the client and the test, not hang them
            stub.failures.append(f"{method} {self.path}: {error!r}\n{traceback.format_exc()}")
            if not exchange.started:
                exchange.send_json(500, stub.error_body(500, f"stub failure: {error}"))
            else:
                self.close_connection = True

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):  # the claude CLI preconnects with HEAD /api/hello
        self._dispatch("HEAD")


class Exchange:
    """One request being answered: its record and the means to send JSON, errors or an SSE stream."""

    def __init__(self, handler: _Handler, record: dict[str, Any]):
        self._handler = handler
        self.record = record
        self.path: str = record["path"]
        self.method: str = record["method"]
        self.body: Any = record["body"]
        self.started = False
        self.cut_after: int | None = None  # a cut-off reply: events (or half the body) sent before closing
        self._events = 0

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        length = len(data)
        if self.cut_after is not None:  # announce the whole body, send half, close: a short read
            data = data[:length // 2]
            self._handler.close_connection = True
        self.started = True
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        if self.method != "HEAD":  # a HEAD answer has the GET answer's headers and no body
            handler.wfile.write(data)
        handler.wfile.flush()

    def start_sse(self, headers: dict[str, str] | None = None) -> None:
        """Begin an event stream; the connection closes when it ends (no length, no chunking)."""
        self.started = True
        handler = self._handler
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True

    def send_event(self, data: Any, event: str | None = None) -> None:
        if self.cut_after is not None and self._events >= self.cut_after:
            return  # the stream was cut off: the connection closes without the rest
        self._events += 1
        text = data if isinstance(data, str) else json.dumps(data)
        frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
        self._handler.wfile.write(frame.encode())
        self._handler.wfile.flush()


def content_text(content: Any, kinds: tuple[str, ...] = ("text",)) -> str:
    """The text of a content field: a str, or the text of its blocks of `kinds` (other blocks named)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, dict) and block.get("type") in kinds:
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict):
            parts.append(f"[{block.get('type', 'block')}]")
    return "\n".join(parts)


def text_pieces(text: str, size: int = 12) -> list[str]:
    """Split text into the deterministic fragments a stream sends (never an empty list for text)."""
    return [text[i:i + size] for i in range(0, len(text), size)]


class StubServer:
    """Base of the wire-format stubs: a scripted ThreadingHTTPServer on 127.0.0.1, ephemeral port."""

    id_prefix = "call_"

    def __init__(self, script: list[Response] | ScriptFunction | Script, *, model: str = "stub-model",
                 port: int = 0, verbose: bool = False):
        self.requested_port = port
        self.script = script if isinstance(script, Script) else Script(script, id_prefix=self.id_prefix)
        self.model = model
        self.verbose = verbose
        self.requests: list[dict[str, Any]] = []  # every HTTP request: method, path, headers, body
        self.chats: list[dict[str, Any]] = []  # every chat request as the script saw it: messages, tools
        self.failures: list[str] = []  # script or stub errors, with tracebacks
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> "StubServer":
        if self._server is not None:
            raise RuntimeError("stub already started")
        self._server = _Server(self, self.requested_port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()  # joins the handler threads
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stub not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The URL the SDK's base_url takes (with /v1 for OpenAI, without for Anthropic)."""
        return f"http://127.0.0.1:{self.port}"

    # helpers for subclasses -----------------------------------------------------------------
    def next_id(self, prefix: str) -> str:
        with self.lock:
            self._counter += 1
            return f"{prefix}{self._counter:06d}"

    def scripted(self, messages: list[Message], tools: list[ToolSpec] | None) -> Response:
        """Record a chat request and take its script entry."""
        with self.lock:
            self.chats.append({"messages": messages, "tools": tools})
        return self.script.next_entry(messages, tools)

    @staticmethod
    def take_cut(exchange: Exchange, entry: Any) -> Any:
        """Strip a {"cut": N | true} option off a reply entry, arming the exchange to cut its reply."""
        if isinstance(entry, dict) and "cut" in entry:
            entry = dict(entry)
            cut = entry.pop("cut")
            exchange.cut_after = 3 if cut is True else int(cut)
        return entry

    def serve_raw(self, exchange: Exchange, entry: Any) -> bool:
        """Answer a {"raw": body, "status"?} entry verbatim; whether it was one."""
        if isinstance(entry, dict) and "raw" in entry:
            exchange.send_json(int(entry.get("status", 200)), entry["raw"])
            return True
        return False

    def handle(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict:
        raise NotImplementedError


def serve_forever(stub: StubServer) -> None:
    """Serve a stub until Ctrl-C (the manual-use entry)."""
    stub.start()
    print(f"{type(stub).__name__} serving at {stub.base_url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stub.stop()
