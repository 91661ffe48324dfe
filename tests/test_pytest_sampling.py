"""`--fast` on pytest selects exactly clude_sample's choice of test ids, though it builds fewer tests."""

import pytest

from clude.config import TestConfig
from clude.harness import run_tests
from clude.harness.inject.clude_sample import sample
from conftest import project_env, write_files

FILES = {
    "conftest.py": """\
import pytest

@pytest.fixture(params=["x", "y"])
def letter(request):
    return request.param

@pytest.fixture
def plain_value():
    return 1
""",
    "tests/test_plain.py": "".join(f"def test_p{i}(plain_value):\n    assert plain_value\n\n"
                                   for i in range(60)),
    "tests/test_mixed.py": """\
import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

@pytest.mark.parametrize("n", range(15))
def test_param(n):
    assert n >= 0

def test_fixture_params(letter):
    assert letter

@pytest.mark.usefixtures("letter")
def test_uses(plain_value):
    assert plain_value

class TestK:
    def test_a(self):
        pass

    @pytest.mark.parametrize("v", [1, 2])
    def test_b(self, v):
        pass

def helper_not_a_test():
    pass

def test_never():
    pass
test_never.__test__ = False
""",
    "tests/test_generated.py": """\
def pytest_generate_tests(metafunc):
    if "k" in metafunc.fixturenames:
        metafunc.parametrize("k", [10, 20, 30])

def test_gen(k):
    assert k

def test_plain_here():
    pass
""",
    "tests/sub/conftest.py": """\
def pytest_generate_tests(metafunc):
    if "z" in metafunc.fixturenames:
        metafunc.parametrize("z", ["a", "b"])
""",
    "tests/sub/test_deep.py": "def test_z(z):\n    assert z\n\ndef test_q():\n    pass\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = write_files(tmp_path_factory.mktemp("sampling"), FILES)
    full = run_tests(root, TestConfig(timeout=120), use_cache=False, env=project_env())
    assert full.status.value == "passed", full.public()
    return root, sorted(full.outcomes)


@pytest.mark.parametrize("rate,seed", [(0.1, "a"), (0.1, "b"), (0.3, "agent-2"), (0.5, "x"),
                                       (0.001, "tiny"), (0.002, "tiny-2"),
                                       # the fallback picks a function left out: it is built late
                                       (0.001, "s0"), (0.001, "s34")])
def test_sampled_run_is_exactly_the_rule_applied_to_every_id(project, rate, seed):
    root, all_ids = project
    assert len(all_ids) == 60 + 15 + 2 + 2 + 1 + 2 + 3 + 1 + 2 + 1
    verdict = run_tests(root, TestConfig(timeout=120), rate=rate, seed=seed, use_cache=False,
                        env=project_env())
    assert sorted(verdict.outcomes) == sorted(sample(all_ids, seed, rate))
    assert (verdict.sample.selected, verdict.sample.of) == (len(verdict.outcomes), len(all_ids))
    assert verdict.status.value == "passed"
