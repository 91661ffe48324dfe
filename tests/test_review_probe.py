"""Review proofs (2026-12-06): a hostile or broken OpenAI-compatible server's /props (llama-server's
chat template) must neither crash nor hang clude, nor have the key sent anywhere but the server.
Each test fails on the code as reviewed; each names the weakness it proves."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clude.config.settings import ModelConfig
from clude.llm.messages import quirks_for
from clude.llm.openai_chat import server_template
from clude.llm.providers import make_model

COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "hello from the server"}}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class Server:
    """A loopback server: GET /props answers `props` (bytes, or a callable writing to the handler),
    POST .../chat/completions answers COMPLETION; every request's path and headers recorded."""

    def __init__(self, props=None, redirect_props_to: str | None = None):
        self.props, self.redirect = props, redirect_props_to
        self.seen: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.seen.append(("GET", self.path, dict(self.headers)))
                if self.path == "/props" and outer.redirect:
                    self._send(302, b"", [("Location", outer.redirect)])
                elif self.path == "/props" and callable(outer.props):
                    outer.props(self)
                elif self.path == "/props" and outer.props is not None:
                    self._send(200, outer.props)
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.seen.append(("POST", self.path, dict(self.headers)))
                self._send(200, json.dumps(COMPLETION).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_once(server: Server):
    model = make_model(ModelConfig(name="mystery-model", base_url=server.base_url, max_retries=0), env={})
    return model.chat([{"role": "user", "content": "hi"}])


def template_props(template: str) -> bytes:
    return json.dumps({"chat_template": template, "bos_token": "<s>", "eos_token": "</s>"}).encode()


# --- crashes -------------------------------------------------------------------------------------

def test_a_deeply_nested_props_body_does_not_crash_the_first_request():
    """HIGH. json.loads of 4 MiB of '[' raises RecursionError, which server_template does not catch
    (only OSError, ValueError): the first chat() of every run dies, and every resume dies again."""
    with Server(props=b"[" * 200_000) as server:
        reply = chat_once(server)
    assert reply.text == "hello from the server"


@pytest.mark.parametrize("template", [
    "{% for i in range(200000) %}{% endfor %}",                       # OverflowError: the sandbox's MAX_RANGE
    "{{ 1 / 0 }}",                                                    # ZeroDivisionError
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",             # RecursionError
    "{{ 'x' * 10 ** 15 }}",                                           # MemoryError (fails at once: no allocation)
], ids=["range-too-big", "zero-division", "recursion", "memory"])
def test_a_template_that_fails_oddly_leaves_the_named_quirks_and_the_run_goes_on(template):
    """HIGH. probe.problem catches only TemplateError/TypeError/ValueError/KeyError/IndexError/
    AttributeError: any other exception a server's template raises escapes chat() and stops the run
    ("unexpected error"), on every resume too. A template clude cannot evaluate must mean 'keep the
    name's quirks', as a template that cannot be fetched does."""
    with Server(props=template_props(template)) as server:
        reply = chat_once(server)
    assert reply.text == "hello from the server"


# --- hangs ---------------------------------------------------------------------------------------

def test_a_template_that_loops_for_hours_does_not_hang_the_first_request():
    """HIGH. Rendering has no time or work limit: two nested range(100000) loops (each within the
    sandbox's MAX_RANGE) are 10^10 iterations, per probe, per variant (up to ~800 renders), under the
    model's _fitting lock. Proven in a child process given 20 s (a bounded probe takes well under 1 s)."""
    template = ("{% for m in messages %}{{ m['content'] }}{% endfor %}"
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    from clude.llm.probe import fit_bounded

    named = quirks_for("mystery-model")
    started = time.monotonic()
    quirks, note = fit_bounded(template, named, limit_s=2.0)  # clude's first request gives it FIT_LIMIT_S
    assert quirks == named and "did not render the probes within 2 s" in note
    assert time.monotonic() - started < 15


def test_a_props_body_dripped_slowly_is_bounded_by_the_timeout():
    """MEDIUM. urlopen's timeout bounds each socket read, not the whole GET: a server that sends one
    byte of its 4 MiB every (timeout - epsilon) keeps server_template (and every thread waiting on
    _fitting) for days. Here: timeout 0.3 s, 60 bytes at 0.2 s each (12 s); the look ends near 0.3 s."""
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        try:
            for _ in range(60):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    with Server(props=drip) as server:
        started = time.monotonic()
        server_template(server.base_url, "", 0.3)
        elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"the /props look took {elapsed:.1f} s with a 0.3 s timeout"


# --- the key -------------------------------------------------------------------------------------

def test_the_key_does_not_follow_a_props_redirect_to_another_host():
    """MEDIUM. urllib's redirect handler copies every header but Content-*: a /props answered with
    302 to another origin (another host, or http:// from https://) gets `Authorization: Bearer <key>`.
    The OpenAI SDK (httpx) drops Authorization on a cross-origin redirect; this side request must too.
    Every non-official OpenAI-compatible base_url is probed (OpenRouter, Groq, a gateway...)."""
    with Server() as elsewhere:
        with Server(redirect_props_to=f"http://127.0.0.1:{elsewhere.port}/props") as server:
            server_template(server.base_url, "sk-review-secret-0123456789abcdef", 2.0)
        leaked = [headers for method, path, headers in elsewhere.seen
                  if any("sk-review-secret" in v for v in headers.values())]
    assert not leaked, f"the key reached another origin: {leaked}"
