"""The real-project corpus, replayed offline: what clude's adapters and the projects' own runners printed
when benchmarks/real_projects/run.py ran real packages (tests/real_projects/<package>/<run>/), read again
here. Each run's counts as clude reads them must equal the runner's own (unless the corpus explains the
difference), and a broken run must name its broken test at the right file:line."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import pytest

from clude.harness.frameworks import by_name
from clude.harness.frameworks.base import Plan, RunContext
from clude.harness.process import tail
from clude.harness.verdict import Counts, decide

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "real_projects"))
from owncounts import clude_counts, own_counts  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "real_projects"
RUNS = sorted(p.parent.relative_to(FIXTURES).as_posix() for p in FIXTURES.glob("*/*/meta.json"))
RESULTS = {"pytest": "events.jsonl", "unittest": "events.jsonl", "node": "results.tap", "jest": "results.json",
           "vitest": "results.json", "cargo": "output.log", "go": "output.log", "tape": "output.log",
           "mocha": "output.log"}


def test_the_corpus_has_runs_of_real_packages():
    packages = {run.split("/")[0] for run in RUNS}
    assert len(packages) >= 10, f"tests/real_projects holds {sorted(packages)}"


def replay(run: Path, meta: dict):
    """The verdict's counts and failures as clude's adapter reads the run's files again."""
    adapter = by_name(meta["framework"])
    ctx = RunContext(root=Path(meta["root"]), run_dir=run, env={})
    plan = Plan(argv=meta["command"], results=run / RESULTS[meta["framework"]])
    facts = adapter.read(plan, ctx, meta["exit_code"], tail(run / "output.log"))
    facts = facts.model_copy(update={"exit_code": meta["exit_code"]})
    status, _ = decide(facts)
    counts = Counts.of(facts.outcomes, len(facts.collection_errors)).model_dump()
    return status.value, counts, facts.collection_errors + facts.failures


@pytest.mark.parametrize("name", RUNS)
def test_a_real_run_reads_as_it_did_and_as_its_runner_counts(name, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / name, run)
    for packed in run.glob("*.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
    meta = json.loads((run / "meta.json").read_text(encoding="utf-8"))
    own = own_counts(meta["reader"], (run / "own.txt").read_text(encoding="utf-8"))
    assert own == meta["own"], f"the runner's summary reads {own}"
    status, counts, failures = replay(run, meta)
    assert (status, clude_counts(counts)) == (meta["status"], meta["clude"])
    if not meta.get("differs"):
        assert clude_counts(counts) == own, f"clude counts {clude_counts(counts)}, the runner {own}"
    if "broken" in meta:
        where = {f.id: f"{f.file}:{f.line}" for f in failures}
        assert where.get(meta["broken"]["id"]) == meta["broken"]["at"], where
