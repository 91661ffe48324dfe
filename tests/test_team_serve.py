"""`clude team serve`, the dashboard: the real server (a subprocess on loopback), over HTTP with httpx and
in a real browser (Debian's chromium, driven headless by Selenium through chromedriver)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from team_helpers import agent_script, set_task_status, team_project, upstream_file, upstream_log

CLUDE = [sys.executable, "-m", "clude"]
FIX_MEAN = '''
import pathlib
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("(len(values) + 1)", "len(values)"))
print("fixed the divisor of mean()")
'''

BREAK_ADD = '''
import sys
if sys.argv[1] == "TASK-002":  # its one attempt fails its acceptance test
    p.write_text(p.read_text().replace("return a + b", "return a - b"))
'''


def clude(root: Path, *args: str) -> str:
    done = subprocess.run([*CLUDE, *args, "-C", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def serving(root: Path) -> Iterator[tuple[str, str]]:
    """`clude team serve --port 0` running: (its base address, its token). Its stderr goes to a file (a
    pipe nobody reads would stop the server once full)."""
    log = root.parent / "serve.log"
    with open(log, "w") as err:
        server = subprocess.Popen([*CLUDE, "team", "serve", "--port", "0", "-C", str(root)], stdout=subprocess.PIPE,
                                  stderr=err, text=True)
    try:
        line = server.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
        assert found, f"no address printed: {line!r} {log.read_text()}"
        yield found.group(1), found.group(2)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def team(tmp_path):
    root, upstream = team_project(tmp_path)
    clude(root, "team", "task", "add", "Fix mean", "--tests", "test_calc.py::test_mean")
    clude(root, "team", "task", "add", "Impossible", "--tests", "test_calc.py::test_add")
    clude(root, "team", "task", "add", "After mean", "--tests", "test_calc.py::test_add", "--deps", "TASK-001")
    set_task_status(tmp_path, upstream, "TASK-002", "failed")
    return root, upstream


def test_every_request_needs_the_run_s_token_and_actions_come_from_the_page_only(team):
    root, upstream = team
    before = upstream_log(upstream)
    with serving(root) as (base, token):
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as anon:
            for path in ("/", "/api/state", "/task/TASK-001", "/live", "/stream"):
                assert anon.get(path).status_code == 403, path
            assert anon.get("/api/state", params={"token": "not-" + token}).status_code == 403
            assert anon.post("/actions/task/TASK-002/retry").status_code == 403
            assert anon.post("/actions/stop").status_code == 403
            assert anon.post("/actions/task", data={"title": "sneaky"}).status_code == 403
            # the token in a POST's address is no way in either: only the page's header is
            assert anon.post(f"/actions/task/TASK-002/retry?token={token}").status_code == 403
        assert upstream_log(upstream) == before  # nothing was changed by the refused requests

        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as anon:
            page = anon.get("/", params={"token": token})  # the address printed: the page, its script keeps it
            assert page.status_code == 200 and "set-cookie" not in page.headers  # no cookie (test_review_serve)
            assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in \
                page.headers["content-security-policy"]
            assert anon.get("/static/app.js").status_code == 200  # the script and style are public
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30, headers={"x-clude-token": token}) as me:
            state = me.get("/api/state").json()
            assert [(t["id"], t["state"]) for t in state["tasks"]] == [
                ("TASK-001", "open"), ("TASK-002", "failed"), ("TASK-003", "open")]
            assert state["graph"]["edges"][0]["from"] == "TASK-001" and state["graph"]["edges"][0]["to"] == "TASK-003"
            assert "retry" in state["tasks"][1]["actions"]
            # another site's page posting with the user's cookie (a CSRF attempt), or a rebinding name
            assert me.post("/actions/task/TASK-002/retry", headers={"origin": "http://evil.example"}).status_code == 403
            assert me.get("/api/state", headers={"host": "evil.example"}).status_code == 400
            assert upstream_log(upstream) == before
            # the page's own request: the same function as `clude team task retry`
            done = me.post("/actions/task/TASK-002/retry", headers={"origin": base}).json()
            assert done == {"ok": True, "message": "TASK-002 retried with 1 more attempt"}
            assert "status: open" in upstream_file(upstream, "tasks/TASK-002.md")
            again = me.post("/actions/task/TASK-002/retry", headers={"origin": base})
            assert again.status_code == 409 and "TASK-002 is open, not failed" in again.json()["message"]
            added = me.post("/actions/task", headers={"origin": base},
                            data={"title": "From the browser", "tests": "test_calc.py::test_add", "deps": "TASK-009"})
            assert added.json()["ok"] and "TASK-004" in added.json()["message"]
            assert "unknown" in added.json()["message"] or "TASK-009" in added.json()["message"]
            paused = me.post("/actions/worker/a1/pause", headers={"origin": base}).json()
            assert paused == {"ok": True, "message": "a1 paused"}
            assert (root / ".clude" / "team" / "paused" / "a1").is_file()
            bad = me.post("/actions/worker/..%2F..%2Fx/pause", headers={"origin": base})
            assert bad.status_code in (404, 409)
            no_run = me.post("/actions/stop", headers={"origin": base})
            assert no_run.status_code == 409 and "no `clude team run` is running" in no_run.json()["message"]


def test_a_task_page_shows_its_failure_records_log_and_landed_diff(tmp_path, team):
    """After a worker ran: the landed task's diff (its code, not the bookkeeping) and its agent's log;
    the failed one's record."""
    root, upstream = team
    clude(root, "team", "task", "retry", "TASK-002")
    agent = agent_script(tmp_path, "fix", FIX_MEAN + BREAK_ADD)
    done = subprocess.run([*CLUDE, "team", "worker", "--upstream", upstream, "--agent-id", "a1", "--backend",
                           "command", "--command", agent, "-C", str(root)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    with serving(root) as (base, token), httpx.Client(base_url=base, timeout=30,
                                                      headers={"x-clude-token": token}) as me:
        page = me.get("/task/TASK-001").text
        assert "-    return sum(values) / (len(values) + 1)" in page.replace("&#39;", "'")
        assert "tasks/TASK-001.md" in page  # the task file's name, shown as such
        assert "fixed the divisor of mean()" in page  # the agent's log tail
        failed = me.get("/task/TASK-002").text
        assert "TASK-002_attempt_1.md" in failed
        assert me.get("/task/NOPE").status_code == 404


CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not installed "
                    "(make test installs them when run as root: apt-get install chromium chromium-driver)")
def test_in_a_browser_a_task_goes_from_open_to_done_live_a_failed_one_is_retried(tmp_path, team):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root, upstream = team
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    worker = None
    try:
        with serving(root) as (base, token):
            driver.get(f"{base}/?token={token}")
            def state(task: str) -> str | None:
                """Read in one script: the live part is redrawn at any moment (a found element goes stale)."""
                return driver.execute_script("const row = document.getElementById(arguments[0]);"
                                             "return row ? row.dataset.state : null;", f"task-{task}")

            def click(selector: str) -> None:
                driver.execute_script("document.querySelector(arguments[0]).click();", selector)

            WebDriverWait(driver, 30).until(lambda d: state("TASK-001") == "open")
            assert driver.current_url == f"{base}/"  # the token is not left in the address bar
            driver.execute_script("window.notReloaded = true")

            agent = agent_script(tmp_path, "fix", FIX_MEAN)
            worker = subprocess.Popen([*CLUDE, "team", "worker", "--upstream", upstream, "--agent-id", "a1",
                                       "--backend", "command", "--command", agent, "--max-tasks", "1",
                                       "-C", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            WebDriverWait(driver, 180, poll_frequency=0.2).until(lambda d: state("TASK-001") == "done")
            assert driver.execute_script("return window.notReloaded") is True  # seen live, not by a reload
            events = driver.find_element(By.ID, "events").text
            assert "claimed" in events and "done" in events
            assert worker.wait(timeout=120) == 0, worker.stderr.read()

            click("button[data-action='/actions/task/TASK-002/retry']")
            WebDriverWait(driver, 30).until(lambda d: state("TASK-002") == "open")
            assert "TASK-002 retried with 1 more attempt" in driver.find_element(By.ID, "said").text
            assert "status: open" in upstream_file(upstream, "tasks/TASK-002.md")
            if os.environ.get("CLUDE_SCREENSHOT"):  # docs/dashboard.png is made this way
                driver.save_screenshot(os.environ["CLUDE_SCREENSHOT"])

            click("a[href='/task/TASK-001']")  # its page, the token kept
            WebDriverWait(driver, 30).until(lambda d: d.current_url == f"{base}/task/TASK-001")
            assert "fixed the divisor of mean()" in driver.find_element(By.ID, "log").text
            driver.back()  # the board again, fetched without the token in its address: asked again with it
            WebDriverWait(driver, 30).until(lambda d: state("TASK-001") == "done")

            driver.switch_to.new_window("window")  # a tab without the token (sessionStorage is per tab)
            driver.get(f"{base}/")
            assert "403" in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()
        if worker is not None and worker.poll() is None:
            worker.kill()
