"""`--fast` for pytest: samples a session's tests by id, and does not even build the ones left out.

Runs in the user's interpreter (standard library and pytest only), registered by clude_pytest_plugin.
Which ids are selected is clude_sample's rule alone. Building a test item is most of pytest's collection
time, so a plain test function (one that yields exactly one item, `<module or class>::<name>`) that the
rule leaves out is never built. Anything that may yield other ids (parametrize marks, parametrized
fixtures, a pytest_generate_tests hook, anything unusual) is built and sampled by its ids afterwards.
"""

import inspect

import pytest

from clude_sample import sample, score


def _marks(obj):
    marks = getattr(obj, "pytestmark", [])
    return marks if isinstance(marks, list) else [marks]


def _own_generate_tests(collector):
    """True when something other than pytest itself may parametrize tests under this collector."""
    if getattr(collector.module, "pytest_generate_tests", None) is not None:
        return True
    if isinstance(collector, pytest.Class) and hasattr(collector.obj, "pytest_generate_tests"):
        return True
    impls = collector.ihook.pytest_generate_tests.get_hookimpls()
    owners = [getattr(i.plugin, "__name__", None) or type(i.plugin).__module__ for i in impls]
    return any(not owner.startswith("_pytest.") for owner in owners)


def _parametrized_fixtures_exist(collector):
    """True when any fixture known so far has params (or when that cannot be told)."""
    try:
        defs = collector.session._fixturemanager._arg2fixturedefs.values()
        return any(d.params is not None for chain in defs for d in chain)
    except Exception:  # another pytest's internals: do not guess
        return True


def _uses_parametrized_fixture(collector, obj):
    """True when a fixture the function uses, directly or not, has params (or when unknown)."""
    try:
        cls = collector.obj if isinstance(collector, pytest.Class) else None
        info = collector.session._fixturemanager.getfixtureinfo(node=collector, func=obj, cls=cls)
        return any(defs and defs[-1].params is not None for defs in info.name2fixturedefs.values())
    except Exception:
        return True


def _collector_may_skip(collector):
    """(plain functions possible here, parametrized fixtures to check) for one module or class."""
    if not isinstance(collector, (pytest.Module, pytest.Class)):
        return False, True
    if any(True for _ in collector.iter_markers("parametrize")) or \
            any(True for _ in collector.iter_markers("usefixtures")) or _own_generate_tests(collector):
        return False, True
    return True, _parametrized_fixtures_exist(collector)


# Before pytest 7, a class's tests had ids with an extra "()" part this module does not predict.
_CAN_SKIP = int(pytest.__version__.split(".")[0]) >= 7


def _user_selects(config):
    """True when the command itself narrows the tests (-k, -m, --deselect, --lf, --sw, node ids):
    the rule then applies to what it selects, which only exists once everything is built."""
    option = config.option
    if any(getattr(option, name, None) for name in ("keyword", "markexpr", "deselect", "lf",
                                                      "stepwise", "stepwise_skip")):
        return True
    return any("::" in str(arg) for arg in config.args)


class Sampler:
    """The pytest hooks of one sampled session."""

    def __init__(self, config, rate, seed, writer):
        self.rate, self.seed, self.writer = rate, seed, writer
        self.may_skip = _CAN_SKIP and rate < 1.0 and not _user_selects(config)
        self.left_out = {}  # id -> (collector, name, obj) of each plain test function never built
        self.building = False
        self.collectors = {}  # nodeid -> _collector_may_skip(collector), the same for all its functions

    def plain_test_function(self, collector, name, obj):
        """True for a function pytest will turn into exactly one test item named `name`."""
        if not inspect.isfunction(obj) or getattr(obj, "__test__", True) is not True:
            return False
        if collector.nodeid not in self.collectors:
            self.collectors[collector.nodeid] = _collector_may_skip(collector)
        possible, check_fixtures = self.collectors[collector.nodeid]
        if not possible or not collector.funcnamefilter(name):
            return False
        if any(m.name in ("parametrize", "usefixtures") for m in _marks(obj)):
            return False
        return not (check_fixtures and _uses_parametrized_fixture(collector, obj))

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(self, collector, name, obj):
        if self.building or not self.may_skip or not self.plain_test_function(collector, name, obj):
            return None  # pytest builds it
        test_id = f"{collector.nodeid}::{name}"
        if score(self.seed, test_id) < self.rate:
            return None
        self.left_out[test_id] = (collector, name, obj)
        return []  # selected out: no item is built

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        ids = [it.nodeid for it in items]
        total = len(ids) + len(self.left_out)
        chosen = set(sample(ids + list(self.left_out), self.seed, self.rate))
        for test_id in chosen.intersection(self.left_out):  # the rule's fallback picked one
            items.extend(self._build(*self.left_out.pop(test_id)))
        deselected = [it for it in items if it.nodeid not in chosen]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = [it for it in items if it.nodeid in chosen]
        self.writer.emit("sample", rate=self.rate, seed=self.seed, selected=len(items),
                         of=total)

    def _build(self, collector, name, obj):
        """The items pytest makes of a function that was left out, made now after all."""
        self.building = True
        try:
            built = collector.ihook.pytest_pycollect_makeitem(collector=collector, name=name, obj=obj)
        finally:
            self.building = False
        return [i for i in (built if isinstance(built, list) else [built]) if i is not None]
