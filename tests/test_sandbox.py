"""The sandbox itself, with the real bubblewrap: what a sandboxed process can see, write, signal and
reach. These tests fail (never skip) where bubblewrap cannot run: `make test` installs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from clude.config.settings import SandboxConfig
from clude.harness.process import lower_commands, run_group
from clude.sandbox import Sandbox, SandboxUnavailable, allowed_env, probe, problem
from clude.sandbox.leftovers import kill_leftovers
from clude.sandbox.policy import Mount, Policy, bwrap_args, merge
from conftest import exits_within, processes_with


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    why = problem()
    assert why is None, f"the sandbox tests need bubblewrap (make test installs it): {why}"
    return Sandbox.from_config(SandboxConfig())


@pytest.fixture
def outside():
    """A folder outside /tmp (which every sandbox replaces with its own), as a project would be."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="clude-sandbox-test-") as folder:
        yield Path(folder)


def run(sandbox: Sandbox, script: str, cwd: Path, *, env: dict | None = None, **paths) -> tuple[int, str]:
    env = env if env is not None else {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    argv, env = sandbox.command([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env, **paths)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_only_the_work_tree_is_writable_and_hidden_folders_are_empty(sandbox, outside):
    project = outside / "project"
    work = project / ".clude" / "agents" / "a1" / "work"
    work.mkdir(parents=True)
    (project / "secret.txt").write_text("project data")
    (project / ".clude" / "agents" / "a1" / "control").mkdir()
    code, out = run(sandbox, """
        import os, pathlib
        pathlib.Path("made.txt").write_text("ok")
        print("listing", sorted(os.listdir(%r)))
        for target in (%r, "/usr/clude-x", "/etc/clude-x"):
            try:
                open(target, "w").write("x")
                print("WROTE", target)
            except OSError as error:
                print("refused", target, error.strerror)
        print("secret exists", os.path.exists(%r))
    """ % (str(project), str(project / "x.txt"), str(project / "secret.txt")), work,
        writable=[work], hidden=[project])
    assert code == 0, out
    assert (work / "made.txt").read_text() == "ok"
    assert "WROTE" not in out and out.count("refused") == 3
    assert "listing ['.clude']" in out and "secret exists False" in out


def test_root_inside_has_no_capabilities_and_cannot_unmount_what_hides_a_path(sandbox, outside):
    (outside / "hidden").mkdir()
    (outside / "hidden" / "key").write_text("k3y")
    code, out = run(sandbox, """
        import subprocess
        print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
        print(subprocess.run(["umount", %r], capture_output=True, text=True).returncode)
        import os; print("visible" if os.path.exists(%r) else "gone")
    """ % (str(outside / "hidden"), str(outside / "hidden" / "key")), outside, hidden=[outside / "hidden"])
    lines = out.split()
    assert code == 0 and lines[0] == "0000000000000000" and lines[1] != "0" and lines[2] == "gone", out


def test_no_process_of_the_host_is_visible_and_the_environment_is_exactly_the_one_given(sandbox, outside):
    code, out = run(sandbox, """
        import os
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        print(len(pids), os.getppid())
        print(sorted(os.environ))
        print(open(f"/proc/{os.getppid()}/environ", "rb").read().count(b"SECRET"))
    """, outside, env={"PATH": os.environ["PATH"], "ONLY_THIS": "1"})
    first, names, secret = out.splitlines()[:3]
    assert code == 0 and int(first.split()[0]) <= 3, out
    caches = {"XDG_CACHE_HOME", "GOCACHE", "npm_config_cache"}  # pointed at the private /tmp
    assert set(eval(names)) - {"LC_CTYPE"} == {"CLUDE_SANDBOX", "ONLY_THIS", "PATH", "PWD", "TMPDIR"} | caches, names
    assert secret == "0"


def test_credentials_under_home_are_hidden_except_what_a_backend_keeps(sandbox, outside):
    home = outside / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / ".git-credentials").write_text("https://u:tok@example.com")
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text("{}")
    code, out = run(sandbox, """
        import os, pathlib
        for p in ("~/.ssh/id_ed25519", "~/.git-credentials", "~/.claude/settings.json"):
            p = os.path.expanduser(p)
            try:
                print(p.rsplit("/", 1)[1], repr(open(p).read()))
            except OSError as error:
                print(p.rsplit("/", 1)[1], "refused", error.strerror)
        pathlib.Path(os.path.expanduser("~/.claude/new.json")).write_text("written")
    """, outside, env={"PATH": os.environ["PATH"], "HOME": str(home)}, keep_home=[".claude"])
    assert code == 0, out
    assert "PRIVATE KEY" not in out and "tok@" not in out
    assert "settings.json '{}'" in out and (home / ".claude" / "new.json").read_text() == "written"


def test_the_network_is_cut_on_request(outside):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    script = """
        import socket
        try:
            socket.create_connection(("127.0.0.1", %d), timeout=5).close()
            print("connected")
        except OSError as error:
            print("refused", error)
    """ % port
    try:
        shared = Sandbox.from_config(SandboxConfig())
        cut = Sandbox.from_config(SandboxConfig(network=False))
        assert "connected" in run(shared, script, outside)[1]
        assert "refused" in run(cut, script, outside)[1]
    finally:
        server.close()


def test_a_sandboxed_process_and_everything_it_started_die_with_their_parent(sandbox, outside):
    marker = f"clude-orphan-{uuid.uuid4().hex}"
    script = (f"setsid sh -c 'sleep 300; :' {marker} & "
              f"while ! grep -qs {marker} /proc/[0-9]*/cmdline; do :; done; echo ready; sleep 300")
    argv, env = sandbox.command(["sh", "-c", script], cwd=outside, env={"PATH": os.environ["PATH"]})
    # the parent is a small Python process (a worker), killed with SIGKILL: nothing of it may survive
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); "
                               "time.sleep(300)", *argv], env=env, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    found = processes_with(marker)
    assert found, "the sandboxed process is not visible on the host"
    parent.kill()
    parent.wait()
    assert all(exits_within(pid, 10) for pid in found), f"{marker} outlived its worker"


def test_a_lowered_sandboxed_command_runs_lower_from_its_start(sandbox, outside):
    """A worker starts its agents and tests 10 nice levels lower: inside the sandbox too, whose first
    processes bubblewrap makes before a renice of it after its start could reach them."""
    argv, env = sandbox.command([sys.executable, "-c", "import os; print(os.nice(0))"], cwd=outside,
                                env={"PATH": os.environ["PATH"]})
    lower_commands(10)
    try:
        for n in range(5):
            done = run_group(argv, outside, env, outside / "o.log", 60)
            assert done.exit_code == 0 and (outside / "o.log").read_text().strip() == str(min(19, os.nice(0) + 10))
    finally:
        lower_commands(0)


def test_a_restarted_worker_kills_what_the_last_run_left(outside):
    marker = f"clude-leftover-{uuid.uuid4().hex}"
    pidfile = outside / "agent.pid"
    proc = subprocess.Popen(["sh", "-c", "sleep 300; :", marker], start_new_session=True)
    from clude.sandbox.leftovers import record
    record(pidfile, proc.pid)
    assert kill_leftovers(pidfile) == proc.pid
    proc.wait(timeout=10)
    assert not pidfile.exists() and kill_leftovers(pidfile) is None


def test_run_group_writes_down_the_running_group_and_forgets_it_at_the_end(outside):
    pidfile = outside / "agent.pid"
    out = outside / "out.log"
    # the pidfile is written just after the group starts: the command waits for it (at most 10 s)
    wait = f"for i in $(seq 1000); do [ -s {pidfile} ] && break; sleep 0.01; done; cat {pidfile}"
    done = run_group(["sh", "-c", wait], outside, {"PATH": os.environ["PATH"]}, out, 30, pidfile=pidfile)
    assert done.exit_code == 0 and out.read_text().split()[0].isdigit() and not pidfile.exists()


def test_tests_get_an_allowlisted_environment_without_keys():
    env = {"PATH": "/bin", "HOME": "/h", "OPENAI_API_KEY": "sk-x", "SENTRY_DSN": "https://k@s/1",
           "DATABASE_URL": "postgres://u:p@h/d", "GH_PAT": "x", "VIRTUAL_ENV": "/v", "MY_FLAG": "1"}
    assert allowed_env(env) == {"PATH": "/bin", "HOME": "/h", "VIRTUAL_ENV": "/v", "PYTHONDONTWRITEBYTECODE": "1"}
    assert allowed_env(env, ["MY_FLAG"], {"X": "y"})["MY_FLAG"] == "1"


def test_a_missing_bubblewrap_is_refused_with_how_to_install_it(monkeypatch):
    assert "bubblewrap" in probe("/nonexistent/bwrap")
    monkeypatch.setenv("CLUDE_BWRAP", "/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailable, match="not installed: .*bubblewrap.*--sandbox off"):
        Sandbox.from_config(SandboxConfig())
    assert Sandbox.from_config(SandboxConfig(mode="off")).enabled is False
    assert Sandbox.from_config(SandboxConfig(), override="off").enabled is False


def test_mounts_are_ordered_parents_first_and_the_widest_access_wins():
    mounts = merge([Mount("/p/a/b", "writable", True), Mount("/p", "hidden", True),
                    Mount("/p/a/b/.git", "readable", True),
                    Mount("/h/.claude", "hidden", True), Mount("/h/.claude", "writable", True)])
    assert [(m.path, m.access) for m in mounts] == [("/p", "hidden"), ("/h/.claude", "writable"),
                                                     ("/p/a/b", "writable"), ("/p/a/b/.git", "readable")]
    args = bwrap_args(Policy(mounts=tuple(mounts), cwd="/p/a/b", network=False))
    assert args.index("--unshare-net") and args[-2:] == ["--chdir", "/p/a/b"]
    assert args.index("--remount-ro") > args.index("/p/a/b/.git")  # hidden folders go read-only last


def test_signals_reach_the_sandboxed_group(sandbox, outside):
    argv, env = sandbox.command(["sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"],
                                cwd=outside, env={"PATH": os.environ["PATH"]})
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) in (7, -signal.SIGTERM)


def test_the_home_folder_is_hidden_but_for_its_toolchains_and_what_a_backend_keeps(sandbox, outside):
    home = outside / "home"
    for name, text in {".bashrc": "export OPENAI_API_KEY=sk-in-bashrc\n", ".bash_history": "curl -H token\n",
                       ".cache/huggingface/token": "hf_token", ".cargo/bin/tool": "#!/bin/sh\necho tool ran\n",
                       ".cargo/credentials.toml": "token = 'crates'\n", ".mytools/bin/mine": "#!/bin/sh\necho mine\n"
                       }.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    for tool in (home / ".cargo/bin/tool", home / ".mytools/bin/mine"):
        tool.chmod(0o755)
    env = {"PATH": f"{home}/.mytools/bin:{os.environ['PATH']}", "HOME": str(home)}
    code, out = run(sandbox, """
        import os, subprocess
        for p in (".bashrc", ".bash_history", ".cache/huggingface/token", ".cargo/credentials.toml"):
            print(p, os.path.exists(os.path.expanduser("~/" + p)) and open(os.path.expanduser("~/" + p)).read())
        print(subprocess.run([os.path.expanduser("~/.cargo/bin/tool")], capture_output=True, text=True).stdout)
        print(subprocess.run(["mine"], capture_output=True, text=True).stdout)
    """, outside, env=env)
    assert code == 0, out
    assert "sk-in-bashrc" not in out and "curl" not in out and "hf_token" not in out and "crates" not in out
    assert "tool ran" in out and "mine" in out  # a toolchain folder, and a folder of $HOME on PATH


def test_a_tree_s_git_config_reads_as_empty_to_its_tests(sandbox, outside):
    import subprocess as sp
    repo = outside / "repo"
    repo.mkdir()
    sp.run(["git", "init", "-q", str(repo)], check=True)
    sp.run(["git", "-C", str(repo), "config", "remote.origin.url", "https://bob:s3cr3t@example.com/x"], check=True)
    code, out = run(sandbox, "print(repr(open('.git/config').read()))", repo, writable=[repo],
                    readable=[repo / ".git"], hidden=[repo / ".git" / "config"])
    assert code == 0 and out.strip() == "''", out


def test_a_leftover_whose_group_leader_is_gone_is_found_by_its_mark(outside):
    from clude.sandbox.leftovers import MARK_VAR, record
    mark = uuid.uuid4().hex
    leader = subprocess.Popen(["sleep", "300"], start_new_session=True)
    record(outside / "agent.pid", leader.pid, mark)
    # what the run started lives on in a session of its own; then its leader dies
    orphan = subprocess.Popen(["sleep", "300"], env={"PATH": os.environ["PATH"], MARK_VAR: mark},
                              start_new_session=True)
    leader.kill()
    leader.wait()
    assert kill_leftovers(outside / "agent.pid") == leader.pid
    assert orphan.wait(timeout=10) == -signal.SIGKILL


def test_bytecode_is_scrubbed_from_a_tree_at_any_depth_and_nothing_else(outside):
    from clude.harness.runner import scrub_bytecode
    deep = outside / Path(*["d"] * 1200)  # deeper than a recursive walk goes
    for folder in (outside / "pkg/__pycache__", deep / "__pycache__", outside / ".git/objects"):
        subprocess.run(["mkdir", "-p", str(folder)], check=True)  # pathlib's mkdir recurses too
    for path in (outside / "pkg/__pycache__/m.cpython-311.pyc", deep / "__pycache__/x.pyc", outside / "stray.pyc",
                 outside / "pkg/m.py", outside / ".git/objects/keep.pyc", outside / "assets/forged.dat"):
        path.parent.mkdir(exist_ok=True)
        path.write_text("x")
    (outside / "lib").mkdir()
    (outside / "lib/__pycache__").symlink_to("../assets")  # links by those names go too, not what they name
    (outside / "lib/m.pyc").symlink_to("../assets/forged.dat")
    scrub_bytecode(outside)
    assert not (outside / "pkg/__pycache__").exists() and not (deep / "__pycache__").exists()
    assert not (outside / "stray.pyc").exists()
    assert not os.path.lexists(outside / "lib/__pycache__") and not os.path.lexists(outside / "lib/m.pyc")
    assert (outside / "assets/forged.dat").exists()
    assert (outside / "pkg/m.py").exists() and (outside / ".git/objects/keep.pyc").exists()
    subprocess.run(["rm", "-rf", str(outside / "d")], check=True)  # the folder's own clean-up recurses
