import os
import sys

import pytest


def test_writes_raw_bytes_to_the_fd():
    os.write(1, b"latin-1 \xe9t\xe9 and junk \xff\xfe\x80\n")
    os.write(2, b"\xc3\x28 invalid utf-8 on stderr\n")


def test_writes_raw_bytes_through_sys_stdout():
    sys.stdout.buffer.write(b"\xff\xfe\xfd not utf-8\n")
    sys.stdout.flush()


def test_fails_with_bytes_in_the_message():
    data = b"\xff\xfe" + "é".encode("latin-1")
    assert data == b"ok"


def test_fails_with_undecodable_file_name():
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    raise FileNotFoundError(name)
