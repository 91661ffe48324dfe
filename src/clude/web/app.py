"""`clude team serve`: the dashboard, a Starlette app on loopback. Every request needs the run's token
(in the printed URL, then in a header the page's script sends); actions are POSTs from the page itself
(same origin) and call the functions the command line calls (team/protocol/steer.py,
team/supervision/control.py)."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.responses import StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clude.gitcli import GitError
from clude.team.protocol.steer import SteerError, block_task, new_task, retry_task, unblock_task
from clude.team.protocol.sync import UpstreamRejected
from clude.team.supervision.control import ControlError, pause, resume, stop_team
from clude.web.source import Source

LOOK_S = 0.5  # how often the event stream looks at events.jsonl and the upstream's main
REFRESH_S = 5.0  # the page's live part is redrawn at least this often (ages, heartbeats)
HOSTS = ("127.0.0.1", "localhost", "[::1]")  # as the Host header names this server
STATIC = Path(__file__).parent / "static"


# On every answer: never framed by another page (a click on Retry lured through a frame), no content
# type guessed, no address (with its token) sent on as a Referer, nothing kept in a cache.
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
                    (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]


def make_app(source: Source, token: str, port: int, *, who: str) -> Starlette:
    templates = Environment(loader=PackageLoader("clude.web", "templates"), autoescape=select_autoescape())

    def page(name: str, status_code: int = 200, **values) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**values), status_code=status_code)

    def authorized(request: Request) -> bool:
        """The token in the X-Clude-Token header (the page's own requests), or in the address of a page
        or the event stream (GET only). No cookie: a browser sends a 127.0.0.1 cookie to every port of
        127.0.0.1, so it would hand the token to any other local server the user opens."""
        given = request.headers.get("x-clude-token")
        if given is None and request.method in ("GET", "HEAD"):
            given = request.query_params.get("token")
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    def refusal(request: Request) -> Response | None:
        """The answer to a request that may not go on (None: it may)."""
        if request.url.path.startswith("/static/") and request.method in ("GET", "HEAD"):
            return None  # the page's script and style: public, and what a refused page needs
        if not authorized(request):
            return page("refused.html", status_code=403)
        origin = request.headers.get("origin")
        if request.method != "GET" and origin is not None and origin not in {f"http://{h}:{port}" for h in HOSTS}:
            return PlainTextResponse(f"403: a request from another site ({origin}) is refused", status_code=403)
        return None

    def guarded(app):
        async def asgi(scope, receive, send):
            async def send_with_headers(message):
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
                await send(message)

            if scope["type"] == "http":
                refused = refusal(Request(scope))
                if refused is not None:
                    return await refused(scope, receive, send_with_headers)
            return await app(scope, receive, send_with_headers)
        return asgi

    async def board_page(request: Request) -> Response:
        state = await run_in_threadpool(source.state)
        events, _ = await run_in_threadpool(source.events_from, -1)
        return page("board.html", s=state, events=events[::-1], project=str(source.root), upstream=_shown(source.url))

    async def live_fragment(request: Request) -> Response:
        state = await run_in_threadpool(source.state)
        return page("live.html", s=state)

    async def api_state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(source.state))

    async def task_page(request: Request) -> Response:
        detail = await run_in_threadpool(source.task, request.path_params["task_id"])
        if detail is None:
            return PlainTextResponse(f"404: no task {request.path_params['task_id']!r} on the board", status_code=404)
        return page("task.html", t=detail["row"], d=detail)  # its row from the same read of the board

    async def stream(request: Request) -> Response:
        async def events():
            _, offset = await run_in_threadpool(source.events_from, -1)
            head = await run_in_threadpool(source.head)
            quiet = 0.0
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                lines, offset = await run_in_threadpool(source.events_from, offset)
                now_head = await run_in_threadpool(source.head)
                for line in lines:
                    yield f"event: line\ndata: {json.dumps(line, ensure_ascii=False)}\n\n"
                if lines or now_head != head or quiet >= REFRESH_S:
                    head, quiet = now_head, 0.0
                    yield "event: changed\ndata: {}\n\n"
                await asyncio.sleep(LOOK_S)
                quiet += LOOK_S

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def act(do: Callable[[Request, dict], str]):
        async def endpoint(request: Request) -> Response:
            form = dict(await request.form())
            try:
                said = await run_in_threadpool(do, request, form)
            except (SteerError, ControlError) as error:
                return JSONResponse({"ok": False, "message": str(error)}, status_code=409)
            except (GitError, UpstreamRejected) as error:
                return JSONResponse({"ok": False, "message": f"cannot change the team's upstream: {error}"},
                                    status_code=502)
            return JSONResponse({"ok": True, "message": said})
        return endpoint

    def steered(action):
        """A board action through a fresh view clone, as the command line does it (admin.clone_turn)."""
        from clude.team.protocol.admin import VIEW_CLONE, clone_turn, view

        with clone_turn(source.root, VIEW_CLONE):
            repo = view(source.root, source.url, VIEW_CLONE)
            return action(repo)

    lease_s = source.settings.team.lease_s

    def add(request: Request, form: dict) -> str:
        fields = {"title": form.get("title", "").strip(), "body": form.get("body", ""),
                  "tests": form.get("tests", "").strip() or None, "role": form.get("role", "").strip() or None,
                  "deps": [d.strip() for d in form.get("deps", "").split(",") if d.strip()],
                  "files": form.get("files", ""),
                  "priority": _number(form.get("priority"), "priority", 0)}
        if not fields["title"]:
            raise SteerError("a task needs a title")
        task, notes = steered(lambda repo: new_task(repo, source.settings, fields))
        return f"added {task.id}: {task.title}" + "".join(f"; {n}" for n in notes)

    def on_task(request: Request, form: dict) -> str:
        task_id, what = request.path_params["task_id"], request.path_params["action"]
        if what == "retry":
            attempts = _number(form.get("attempts"), "attempts", 1)
            return steered(lambda repo: retry_task(repo, task_id, attempts=attempts, who=who, lease_s=lease_s))
        if what == "block":
            return steered(lambda repo: block_task(repo, task_id, form.get("reason", ""), who=who, lease_s=lease_s))
        if what == "unblock":
            return steered(lambda repo: unblock_task(repo, task_id, who=who, lease_s=lease_s))
        raise SteerError(f"no action {what!r} on a task (retry, block, unblock)")

    def on_worker(request: Request, form: dict) -> str:
        agent, what = request.path_params["agent"], request.path_params["action"]
        if what == "pause":
            return f"{agent} paused" if pause(source.state_dir, agent) else f"{agent} was paused already"
        if what == "resume":
            return f"{agent} resumed" if resume(source.state_dir, agent) else f"{agent} was not paused"
        raise ControlError(f"no action {what!r} on a worker (pause, resume)")

    def stop(request: Request, form: dict) -> str:
        return f"asked the team run (pid {stop_team(source.state_dir)}) to stop"

    routes = [
        Route("/", board_page), Route("/live", live_fragment), Route("/api/state", api_state),
        Route("/task/{task_id}", task_page), Route("/stream", stream),
        Route("/actions/task", act(add), methods=["POST"]),
        Route("/actions/task/{task_id}/{action}", act(on_task), methods=["POST"]),
        Route("/actions/worker/{agent}/{action}", act(on_worker), methods=["POST"]),
        Route("/actions/stop", act(stop), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(HOSTS)),
                  Middleware(guarded)]
    return Starlette(routes=routes, middleware=middleware)


def _number(value, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise SteerError(f"{name} must be a whole number, not {value!r}") from None


def _shown(url: str) -> str:
    from clude.secrets import Redactor
    return Redactor({}).text(url)
