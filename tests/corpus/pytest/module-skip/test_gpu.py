import pytest

cuda = pytest.importorskip("no_cuda_module_for_clude")


def test_kernel():
    assert cuda
