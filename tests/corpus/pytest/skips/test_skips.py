import sys

import pytest


def test_runs():
    assert True


@pytest.mark.skip(reason="not ready")
def test_later():
    assert False


@pytest.mark.skipif(sys.platform != "nowhere", reason="only on nowhere")
def test_platform():
    assert False


def test_imperative_skip():
    pytest.skip("needs a GPU")


def test_importorskip():
    pytest.importorskip("no_such_module_for_clude_either")
