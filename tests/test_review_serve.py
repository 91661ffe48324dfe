"""Adversarial review of `clude team serve` (the dashboard) and the steering it offers: each test is an
attack that works today and names what should hold instead. Real server subprocesses, real git, a real
browser where the attack is the browser's (skipped without Debian's chromium); no mocks, no sleeps."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from team_helpers import git, team_project

CLUDE = [sys.executable, "-m", "clude"]


def clude(root: Path, *args: str) -> str:
    done = subprocess.run([*CLUDE, *args, "-C", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Served:
    def __init__(self, base: str, token: str, process: subprocess.Popen, stderr: Path):
        self.base, self.token, self.process, self.stderr = base, token, process, stderr

    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        """A client sending the token as the page's script does (the X-Clude-Token header)."""
        with httpx.Client(base_url=self.base, follow_redirects=False, timeout=60,
                          headers={"x-clude-token": self.token}) as me:
            assert me.get("/").status_code == 200
            yield me


@contextmanager
def serving(root: Path, *args: str, env: dict | None = None,
            address: str = r"http://127\.0\.0\.1:\d+") -> Iterator[Served]:
    """`clude team serve --port 0` running (its stderr to a file: a pipe nobody reads would block the
    server once a traceback or two filled it)."""
    stderr = root.parent / f"serve-stderr-{time.monotonic_ns()}.txt"
    with open(stderr, "w") as err:
        server = subprocess.Popen([*CLUDE, "team", "serve", "--port", "0", *args, "-C", str(root)],
                                  stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        line = server.stdout.readline()
        found = re.search(rf"({address})/\?token=(\S+)", line)
        assert found, f"no address printed: {line!r} {stderr.read_text()}"
        yield Served(found.group(1), found.group(2), server, stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)


def push_files(tmp_path: Path, upstream: str, files: dict[str, str | bytes], message: str) -> str:
    """Files committed straight onto the upstream's main (a person, another clude, or an agent that
    reached the upstream); the commit."""
    other = tmp_path / f"push-{time.monotonic_ns()}"
    subprocess.run(["git", "clone", "-q", upstream, str(other)], check=True)
    for name, content in files.items():
        path = other / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(other, "add", "-A")
    git(other, "-c", "user.name=p", "-c", "user.email=p@p", "commit", "-qm", message)
    git(other, "push", "-q", "origin", "HEAD:main")
    return git(other, "rev-parse", "HEAD").strip()


def task_file(task_id: str, title: str, deps: list[str]) -> str:
    return (f"---\nid: {task_id}\ntitle: {title}\nrole: null\ndeps: [{', '.join(deps)}]\npriority: 0\n"
            f"max_attempts: 3\nstatus: open\ntests: test_calc.py::test_add\nblocked_reason: null\n---\n")


def worker_event(root: Path, **event) -> None:
    """An event as a worker appends it to the project's events.jsonl."""
    with open(root / ".clude" / "events.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"at": time.time(), "agent": "a1", "level": "INFO", **event}) + "\n")


@pytest.fixture
def team(tmp_path):
    root, upstream = team_project(tmp_path)
    clude(root, "team", "task", "add", "Fix mean", "--tests", "test_calc.py::test_mean")
    return root, upstream


# --- denial of service by what is on the board ---------------------------------------------------------

def test_a_long_dependency_chain_does_not_take_the_board_down(tmp_path, team):
    """The graph's layout recurses once per dependency: a chain of 600 tasks (a planner's output, or an
    agent that reached the upstream), listed so the first task sorted depends on all the others, is a
    RecursionError, and every page with the board (/, /live, /api/state) answers 500 while `clude team
    status` shows it fine."""
    root, upstream = team
    n = 600
    push_files(tmp_path, upstream, {
        f"tasks/C-{i:04d}.md": task_file(f"C-{i:04d}", f"step {i}", [f"C-{i + 1:04d}"] if i < n else [])
        for i in range(1, n + 1)}, "a long chain")
    assert "C-0001" in clude(root, "team", "status")
    with serving(root) as served, served.client() as me:
        for path in ("/api/state", "/live", "/"):
            answer = me.get(path)
            assert answer.status_code == 200, (path, served.stderr.read_text()[-300:])
        assert len(me.get("/api/state").json()["graph"]["nodes"]) == n + 1


def test_a_failure_record_with_an_odd_name_does_not_break_its_task_page(tmp_path, team):
    """The task page sorts failure records by int(the name's last '_' part): a record named
    TASK-001_attempt_final.md on the upstream (the CLI's `task show` lists it) makes the page a 500."""
    root, upstream = team
    push_files(tmp_path, upstream, {"tasks/failures/TASK-001_attempt_final.md": "# notes\n"}, "a record")
    assert "TASK-001_attempt_final.md" in clude(root, "team", "task", "show", "TASK-001")
    with serving(root) as served, served.client() as me:
        page = me.get("/task/TASK-001")
        assert page.status_code == 200, served.stderr.read_text()[-300:]
        assert "TASK-001_attempt_final.md" in page.text


def _peak_kib(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    value = lambda name: int(re.search(rf"{name}:\s+(\d+) kB", status).group(1))  # noqa: E731
    return value("VmRSS"), value("VmHWM")


def test_a_huge_landed_change_is_not_built_whole_in_memory_to_show_200_kb(tmp_path, team):
    """The task page shows at most DIFF_BYTES (200 kB) of the landed diff, but builds the whole patch
    text first: an agent's commit with an 80 MB generated file costs the server hundreds of MB per view
    (and a few views at once, gigabytes)."""
    root, upstream = team
    line = "0123456789abcdef" * 4 + "\n"
    commit = push_files(tmp_path, upstream, {"data/fixture.txt": line * (80_000_000 // len(line))}, "big fixture")
    worker_event(root, kind="done", task="TASK-001", commit=commit)
    with serving(root) as served, served.client() as me:
        me.get("/api/state")  # the serve clone fetched and warm
        before, _ = _peak_kib(served.process.pid)
        page = me.get("/task/TASK-001")
        assert page.status_code == 200 and ("(cut)" in page.text or "(not shown: 79,999,985 bytes)" in page.text)
        _, peak = _peak_kib(served.process.pid)
        assert (peak - before) / 1024 < 150, f"the server grew {(peak - before) // 1024} MB to show 200 kB"


def test_an_open_tab_does_not_ask_a_remote_upstream_twice_a_second(tmp_path, team):
    """Every /stream (one per open tab) asks the upstream's main every LOOK_S = 0.5 s: for an upstream
    that is not a local path (ssh, https; file:// here) that is a `git ls-remote` per tab twice a second
    for as long as the tab is open, hammering a hosted remote. Three tabs for one refresh period (5 s)
    should cost a few ls-remote at most, not ~30."""
    root, upstream = team
    trace = tmp_path / "git-trace.txt"
    env = {**os.environ, "GIT_TRACE": str(trace)}
    with serving(root, "--upstream", f"file://{upstream}", env=env) as served, served.client():
        trace.write_text("")  # what the start and the first page cost is not counted

        def tab():
            with httpx.Client(base_url=served.base, headers={"x-clude-token": served.token}, timeout=60) as t, \
                    t.stream("GET", "/stream") as stream:
                for text in stream.iter_lines():
                    if text.startswith("event: changed"):  # the quiet refresh: REFRESH_S in
                        return

        tabs = [threading.Thread(target=tab) for _ in range(3)]
        for t in tabs:
            t.start()
        for t in tabs:
            t.join(timeout=60)
        asked = trace.read_text().count("ls-remote")
        assert asked <= 6, f"{asked} `git ls-remote` of the upstream for 3 tabs in one refresh period"


# --- the token and its cookie --------------------------------------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@contextmanager
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def recorder() -> Iterator[tuple[int, list[str]]]:
    """Another program listening on loopback (another local user's, or a dev server an agent started in
    its run: the sandbox shares the network): the Cookie headers it is sent."""
    heard: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            heard.append(self.headers.get("cookie") or "")
            body = b"<!doctype html><p>a preview of the agent's work</p>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], heard
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not installed")
def test_the_token_cookie_is_not_handed_to_another_server_on_loopback(tmp_path, team):
    """Cookies are kept apart by host, not by port: had the dashboard traded its token for a cookie on
    127.0.0.1, the browser would send it (the token itself) to every server on 127.0.0.1, whatever its
    port. A page the user opens there (a dev server an agent started and named in its log, another
    local user's server) would read the token and drive the dashboard. The token is kept in the tab's
    sessionStorage instead (an origin's own, port included)."""
    root, _ = team
    with serving(root) as served, recorder() as (port, heard), browser(tmp_path) as driver:
        driver.get(f"{served.base}/?token={served.token}")
        assert driver.current_url == f"{served.base}/"
        driver.get(f"http://127.0.0.1:{port}/")
        driver.get(f"http://127.0.0.1:{port}/again")  # a same-site request, as the page's own fetches are
        assert heard, "the other server was never reached"
        stolen = [c for c in heard if served.token in c]
        assert not stolen, f"another server on 127.0.0.1 was sent the dashboard's token: {stolen[0]}"
        # what the thief does with it, to show it is the whole key
        with httpx.Client(base_url=served.base, timeout=30) as thief:
            assert thief.get("/api/state", headers={"cookie": heard[-1]}).status_code == 403


def test_the_token_trade_does_not_redirect_to_another_host(team):
    """The token is traded for a cookie on any path, then the browser is sent to request.url.path: a
    path of //evil.example/ makes that a protocol-relative redirect off the dashboard (an open redirect
    on the one request that carries the token)."""
    root, _ = team
    with serving(root) as served:
        answer = httpx.get(f"{served.base}//evil.example/?token={served.token}", follow_redirects=False,
                           timeout=30)
        assert not answer.headers.get("location", "").startswith("//"), answer.headers["location"]


def test_the_dashboard_on_ipv6_loopback_answers_its_own_address(team):
    """`--host ::1` is offered, but TrustedHostMiddleware compares the Host header's host with its
    brackets ("[::1]") to "::1": every request to the printed http://[::1]:PORT/ address is a 400."""
    root, _ = team
    with serving(root, "--host", "::1", address=r"http://\[::1\]:\d+") as served:
        entered = httpx.get(f"{served.base}/", params={"token": served.token}, follow_redirects=False, timeout=30)
        assert entered.status_code == 200, (entered.status_code, entered.text)


# --- actions ---------------------------------------------------------------------------------------------

def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]


def test_stop_signals_only_a_team_run_not_any_process_a_pidfile_names(team):
    """`team stop` and the dashboard's Stop button SIGTERM whatever pid .clude/team/run.pid names, as
    long as its start time matches (which /proc shows for any process): a planted or copied pidfile
    makes the button kill an unrelated process of the user (here a `sleep`; an editor, a database)."""
    root, _ = team
    victim = subprocess.Popen(["sleep", "300"])
    try:
        pidfile = root / ".clude" / "team" / "run.pid"
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{victim.pid} {_start_time(victim.pid)}\n")
        with serving(root) as served, served.client() as me:
            answer = me.post("/actions/stop", headers={"origin": served.base})
        assert victim.poll() is None, "the dashboard's stop killed a process that is no team run"
        assert answer.status_code == 409
    finally:
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)


# --- secrets ---------------------------------------------------------------------------------------------

def test_a_landed_diff_is_redacted_like_the_log_tail(tmp_path, team):
    """The task page redacts the agent's log tail with the environment's secrets, but shows the landed
    diff as it is: an agent that wrote a secret of its environment into a file it committed (a
    config, a test fixture) has it shown in clear on the page."""
    root, upstream = team
    secret = "s3cr3t-Value-9f8e7d6c5b4a"
    commit = push_files(tmp_path, upstream, {"settings.py": f"SERVICE_TOKEN = {secret!r}\n"}, "config")
    worker_event(root, kind="done", task="TASK-001", commit=commit)
    with serving(root, env={**os.environ, "SERVICE_TOKEN": secret}) as served, served.client() as me:
        page = me.get("/task/TASK-001").text
        assert "settings.py" in page  # the diff is shown
        assert secret not in page


def test_the_dashboard_cannot_be_framed_by_another_page(team):
    """No X-Frame-Options and no Content-Security-Policy frame-ancestors: a page on another port of
    127.0.0.1 (same-site, so the SameSite=Strict cookie is sent to a frame it opens) can frame the
    board and lure clicks onto its Retry/Unblock/Pause buttons (they ask nothing first)."""
    root, _ = team
    with serving(root) as served, served.client() as me:
        headers = me.get("/").headers
        framing = headers.get("x-frame-options", "").lower()
        policy = headers.get("content-security-policy", "")
        assert framing in ("deny", "sameorigin") or "frame-ancestors" in policy, dict(headers)
