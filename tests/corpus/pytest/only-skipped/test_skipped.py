import sys

import pytest


@pytest.mark.skip(reason="not ready")
def test_later():
    assert False


@pytest.mark.skipif(sys.version_info > (2,), reason="python 2 only")
def test_py2():
    assert False


def test_skips_itself():
    pytest.skip("no database here")
