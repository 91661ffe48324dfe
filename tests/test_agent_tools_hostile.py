"""The file tools against a hostile workspace: FIFOs, sockets and devices are never opened for reading
(nothing blocks), and writes replace the file instead of writing through a hard link into a file
outside the workspace."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from clude.agent.tools import Toolbox, ToolResult

# Seconds a tool call may take here before the test counts it as hung (a call that works takes ms).
HANG_S = 20


@pytest.fixture
def root(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def box(root) -> Toolbox:
    return Toolbox(root, env={"PATH": os.environ.get("PATH", "")})


def finished(box: Toolbox, fifo: Path, name: str, arguments: dict) -> ToolResult:
    """The result of the call, failing the test when it does not return within HANG_S seconds. A call
    stuck opening the FIFO is let go (a writer opens the other end) so that no thread is left behind."""
    out: list[ToolResult] = []
    worker = threading.Thread(target=lambda: out.append(box.call(name, arguments)), daemon=True)
    worker.start()
    worker.join(HANG_S)
    if worker.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the stuck reader is there: this open succeeds
        os.close(fd)
        worker.join(HANG_S)
        pytest.fail(f"{name} {arguments} blocked on the FIFO {fifo}")
    return out[0]


def test_grep_list_files_and_read_file_skip_a_fifo(box, root):
    (root / "src").mkdir()
    (root / "src/app.py").write_text("needle = 1\n")
    fifo = root / "src/pipe.py"
    os.mkfifo(fifo)
    found = finished(box, fifo, "grep", {"pattern": "needle"})
    assert not found.is_error and "src/app.py:1: needle = 1" in found.text
    only = finished(box, fifo, "grep", {"pattern": "needle", "glob": "*.py", "path": "src"})
    assert "src/app.py:1" in only.text and "pipe" not in only.text
    listed = finished(box, fifo, "list_files", {"path": "."})
    assert "src/app.py" in listed.text and "pipe.py" not in listed.text
    read = finished(box, fifo, "read_file", {"path": "src/pipe.py"})
    assert read.is_error and "src/pipe.py" in read.text and "named pipe (FIFO)" in read.text
    direct = finished(box, fifo, "grep", {"pattern": "needle", "path": "src/pipe.py"})
    assert direct.is_error and "src/pipe.py" in direct.text and "named pipe (FIFO)" in direct.text
    edit = finished(box, fifo, "edit_file", {"path": "src/pipe.py", "search": "a", "replace": "b"})
    assert edit.is_error and "named pipe (FIFO)" in edit.text
    write = finished(box, fifo, "write_file", {"path": "src/pipe.py", "content": "x\n"})
    assert write.is_error and "named pipe (FIFO)" in write.text
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # left as it was


def test_a_socket_is_skipped_and_named(box, root):
    (root / "notes.txt").write_text("needle\n")
    path = root / "s.sock"
    if len(str(path)) >= 100:
        pytest.skip(f"{path} is too long for a unix socket address")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        grep = box.call("grep", {"pattern": "needle"})
        assert not grep.is_error and "notes.txt:1" in grep.text and "s.sock" not in grep.text
        assert "s.sock" not in box.call("list_files", {}).text
        read = box.call("read_file", {"path": "s.sock"})
        assert read.is_error and "s.sock is a socket" in read.text
    finally:
        server.close()


def test_a_device_file_is_never_opened(box, root):
    try:
        os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device file needs root")
    read = box.call("read_file", {"path": "null"})
    assert read.is_error and "null is a character device" in read.text
    assert "null" not in box.call("list_files", {}).text


def test_write_file_does_not_write_through_a_hard_link_to_outside(box, root, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("the secret stays\n")
    os.link(outside, root / "shared.txt")
    os.chmod(root / "shared.txt", 0o751)
    done = box.call("write_file", {"path": "shared.txt", "content": "changed\n"})
    assert not done.is_error, done.text
    assert outside.read_text() == "the secret stays\n"
    assert (root / "shared.txt").read_text() == "changed\n"
    assert stat.S_IMODE(os.stat(root / "shared.txt").st_mode) == 0o751  # the permission bits kept
    assert os.stat(root / "shared.txt").st_nlink == 1
    assert sorted(p.name for p in root.iterdir()) == ["shared.txt"]  # no temp file left


def test_edit_file_does_not_write_through_a_hard_link_to_outside(box, root, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    os.link(outside, root / "code.py")
    os.chmod(root / "code.py", 0o700)
    done = box.call("edit_file", {"path": "code.py", "search": "x = 1", "replace": "x = 2"})
    assert not done.is_error, done.text
    assert outside.read_text() == "x = 1\n"
    assert (root / "code.py").read_text() == "x = 2\n"
    assert stat.S_IMODE(os.stat(root / "code.py").st_mode) == 0o700
    assert sorted(p.name for p in root.iterdir()) == ["code.py"]


def test_a_new_file_gets_the_usual_permissions_and_a_symlink_inside_stays_a_link(box, root):
    done = box.call("write_file", {"path": "new/file.txt", "content": "hi\n"})
    assert not done.is_error, done.text
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(root / "new/file.txt").st_mode) == 0o666 & ~umask
    (root / "alias.txt").symlink_to("new/file.txt")
    assert not box.call("write_file", {"path": "alias.txt", "content": "bye\n"}).is_error
    assert (root / "alias.txt").is_symlink() and (root / "new/file.txt").read_text() == "bye\n"
