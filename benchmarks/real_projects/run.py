"""The real-project corpus: `clude test` on real packages as they ship, against their own test runners.

Each package of projects.toml is fetched from its registry (a PyPI sdist, an npm tarball; pinned and
checked by sha256), set up as its own docs say (a virtualenv with its test requirements and the package
installed editable; `npm install`), and run as it is and then with a one-line patch that breaks a known
test. For each run it compares clude's verdict with what the project's own runner says (counts), checks
that the broken test is named and located at the right file:line, and times clude against the bare
command clude ran. It writes the table into docs/benchmarks.md and keeps what each run's parsers read
(the adapters' result files and the runner's summary) in tests/real_projects/, which
tests/test_real_projects.py replays offline. Downloads: run by `make real-projects`, never by `make test`.

  python benchmarks/real_projects/run.py [--only NAME ...] [--no-fixtures] [--no-docs]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import CLUDE, ROOT, Figure, report  # noqa: E402
from owncounts import clude_counts, own_counts  # noqa: E402

MANIFEST = HERE / "projects.toml"
FIXTURES = ROOT / "tests" / "real_projects"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- real-projects: begin -->", "<!-- real-projects: end -->"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clude-real-projects"
FIXTURE_BYTES = 300_000   # a run whose parsed files are larger, gzipped, is not kept as a fixture
RESULT_FILES = ("events.jsonl", "results.tap", "locations.jsonl", "results.json", "output.log")
OVERHEAD_RATIO, OVERHEAD_S = 1.10, 0.3
PIP_TIMEOUT_S, RUN_TIMEOUT_S = 900, 900


@dataclass
class Project:
    name: str
    registry: str                     # "pypi" or "npm"
    version: str
    sha256: str
    kind: str                         # what it stands for in the corpus
    own: list[str]                    # the project's own runner, as its docs or CI run it
    reader: str                       # how its summary is read (owncounts.READERS)
    broken_file: str
    old: str                          # the line the patch replaces (whole, stripped of its indent)
    new: str
    broken_test: str                  # the test the patch breaks, as clude names it
    broken_at: str                    # where clude must locate it: "file:line"
    requires: list[str] = field(default_factory=list)  # pypi: installed beside the package
    editable: bool = True             # pypi: the package installed editable (False: run from its folder)
    differs: str = ""                 # why clude's counts differ from the runner's, when they may

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.version}"


def load(path: Path = MANIFEST) -> list[Project]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Project(**entry) for entry in data["project"]]


# fetching ---------------------------------------------------------------------------------------
def _get(url: str, accept: str = "*/*") -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "clude-real-projects"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return answer.read()


def fetch(p: Project) -> Path:
    """The package's archive in the cache, downloaded once and checked against its sha256."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if p.registry == "pypi":
        files = json.loads(_get(f"https://pypi.org/simple/{p.name}/", "application/vnd.pypi.simple.v1+json"))["files"]
        sdists = [f for f in files if f["hashes"].get("sha256") == p.sha256]
        if not sdists:
            raise SystemExit(f"{p.slug}: no file on PyPI has sha256 {p.sha256}")
        archive = CACHE / sdists[0]["filename"]
        if not archive.exists():
            archive.write_bytes(_get(sdists[0]["url"]))
    else:
        archive = CACHE / f"{p.name.replace('/', '-').lstrip('@')}-{p.version}.tgz"
        if not archive.exists():
            done = subprocess.run(["npm", "pack", f"{p.name}@{p.version}", "--json", "--pack-destination", str(CACHE)],
                                  capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=True)
            (CACHE / json.loads(done.stdout)[0]["filename"]).rename(archive)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != p.sha256:
        archive.unlink()
        raise SystemExit(f"{p.slug}: {archive.name} has sha256 {digest}, not {p.sha256} as projects.toml says")
    return archive


def unpack(archive: Path, into: Path) -> Path:
    """The archive extracted; the folder it holds (sdists and npm tarballs hold one)."""
    into.mkdir(parents=True)
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    (top,) = [p for p in into.iterdir()]
    return top


def set_up(p: Project, root: Path, work: Path) -> dict[str, str]:
    """The environment the project's tests run in, made as its docs say."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "PYTEST_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    if p.registry == "pypi":
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=PIP_TIMEOUT_S)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if p.requires:
            subprocess.run(pip + p.requires, check=True, timeout=PIP_TIMEOUT_S, capture_output=True)
        if p.editable:
            subprocess.run(pip + ["--no-deps", "-e", str(root)], check=True, timeout=PIP_TIMEOUT_S, capture_output=True)
        env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    else:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], cwd=root,
                       check=True,
                       timeout=PIP_TIMEOUT_S, capture_output=True, env=env)
    return env


# running ----------------------------------------------------------------------------------------
def _argv(words: list[str], env: dict[str, str]) -> list[str]:
    python = str(Path(env["VIRTUAL_ENV"]) / "bin" / "python") if "VIRTUAL_ENV" in env else sys.executable
    return [python if w == "{python}" else w for w in words]


def timed(argv: list[str], root: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return time.perf_counter() - start, done


def run_clude(root: Path, env: dict[str, str]) -> tuple[float, dict]:
    seconds, done = timed([CLUDE, "test", "--json", "--no-cache", "-C", str(root)], root, env)
    try:
        return seconds, json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"clude test gave no verdict in {root}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


@dataclass
class Outcome:
    own: dict[str, int]
    clude: dict[str, int]
    verdict: dict
    located: str | None = None        # where clude put the broken test's failure, "file:line"
    named: bool = True                # the broken test is among the failures (patched runs)


def one_run(p: Project, root: Path, env: dict[str, str], variant: str, keep: bool) -> tuple[Outcome, float, float]:
    """The project's own runner, then clude, then the bare command clude was given. Times: clude's best of
    two against the best of two of each bare command (clude may run less than `npm test`: the test step
    alone)."""
    own_s, own = timed(_argv(p.own, env), root, env)
    clude_s, verdict = run_clude(root, env)
    bare_s, _ = timed(verdict["command"], root, env)
    again_s, _ = run_clude(root, env)
    bare2_s, _ = timed(verdict["command"], root, env)
    own2_s, _ = timed(_argv(p.own, env), root, env)
    outcome = Outcome(own_counts(p.reader, own.stdout + own.stderr), clude_counts(verdict["counts"]), verdict)
    if variant == "broken":
        hits = [f for f in verdict["failures"] if f["id"] == p.broken_test]
        outcome.named = bool(hits)
        outcome.located = f"{hits[0]['file']}:{hits[0]['line']}" if hits else None
    if keep:
        capture(p, variant, root, verdict, own.stdout + own.stderr, outcome)
    return outcome, min(clude_s, again_s), min(bare_s, bare2_s, own_s, own2_s)


def capture(p: Project, variant: str, root: Path, verdict: dict, own_text: str, outcome: Outcome) -> None:
    """The files clude's adapter read (gzipped) and the runner's summary, kept for
    tests/test_real_projects.py."""
    run_dir = root / Path(verdict["report_path"]).parent
    files = [run_dir / name for name in RESULT_FILES if (run_dir / name).is_file()]
    target = FIXTURES / p.slug / variant
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for f in files:
        (target / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes(), mtime=0))
    size = sum(f.stat().st_size for f in target.iterdir())
    if size > FIXTURE_BYTES:
        shutil.rmtree(target)
        print(f"  {p.slug} {variant}: its result files are {size} bytes gzipped: not kept as a fixture")
        return
    (target / "own.txt").write_text("\n".join(own_text.splitlines()[-80:]) + "\n", encoding="utf-8")
    meta = {"framework": verdict["framework"], "command": verdict["command"], "exit_code": verdict["exit_code"],
            "root": str(root), "reader": p.reader, "own": outcome.own, "clude": outcome.clude,
            "status": verdict["status"], "differs": p.differs}
    if variant == "broken":
        meta["broken"] = {"id": p.broken_test, "at": p.broken_at}
    (target / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def patch(p: Project, root: Path) -> None:
    path = root / p.broken_file
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == p.old.strip()]
    if len(hits) != 1:
        raise SystemExit(f"{p.slug}: {p.broken_file} has {len(hits)} lines {p.old!r}, not one")
    line = lines[hits[0]]
    lines[hits[0]] = line[:len(line) - len(line.lstrip())] + p.new.strip() + "\n"
    path.write_text("".join(lines), encoding="utf-8")


# the table --------------------------------------------------------------------------------------
@dataclass
class Row:
    p: Project
    as_is: Outcome
    broken: Outcome
    clude_s: float
    bare_s: float

    @property
    def equal(self) -> bool:
        return self.as_is.own == self.as_is.clude and self.broken.own == self.broken.clude

    @property
    def located(self) -> bool:
        return self.broken.named and self.broken.located == self.p.broken_at

    @property
    def fast(self) -> bool:
        return self.clude_s <= OVERHEAD_RATIO * self.bare_s + OVERHEAD_S


def _c(c: dict[str, int]) -> str:
    return f"{c['passed']}/{c['failing']}/{c['skipped']}"


def table(rows: list[Row]) -> str:
    out = ["| package | kind | own runner: passed/failing/skipped (as is; broken) | clude | broken test "
           "located | clude vs bare |", "|---|---|---|---|---|---|"]
    for r in rows:
        why = r.p.differs or "unexplained"
        counts = "equal" if r.equal else f"{_c(r.as_is.clude)}; {_c(r.broken.clude)} (differs: {why})"
        where = f"{r.broken.located} {'yes' if r.located else f'no (wanted {r.p.broken_at})'}"
        out.append(f"| {r.p.registry}: {r.p.slug} | {r.p.kind} | {_c(r.as_is.own)}; {_c(r.broken.own)} | {counts} | "
                   f"{where} | {r.clude_s:.2f} s vs {r.bare_s:.2f} s |")
    return "\n".join(out)


def write_docs(text: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    if BEGIN not in doc:
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} section to write the table into")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="the packages to run (names); all by default")
    parser.add_argument("--no-fixtures", action="store_true", help="keep no fixtures in tests/real_projects")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md as it is")
    args = parser.parse_args()
    projects = [p for p in load() if not args.only or p.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="clude-real-") as tmp:
        for p in projects:
            print(f"{p.slug}: fetching and setting up", flush=True)
            work = Path(tmp) / p.slug
            root = unpack(fetch(p), work / "src")
            env = set_up(p, root, work)
            as_is, clude_s, bare_s = one_run(p, root, env, "as-is", not args.no_fixtures)
            patch(p, root)
            broken, _, _ = one_run(p, root, env, "broken", not args.no_fixtures)
            rows.append(Row(p, as_is, broken, clude_s, bare_s))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print(text)
    if not args.no_docs and not args.only:
        write_docs(text)
    n = len(rows)
    return report("real projects", [
        Figure("real", "equal counts (as is and broken)", f"{sum(r.equal or bool(r.p.differs) for r in rows)} of {n}",
               "all (or the difference explained)", all(r.equal or r.p.differs for r in rows)),
        Figure("real", "broken test named and located", f"{sum(r.located for r in rows)} of {n}", "all",
               all(r.located for r in rows)),
        Figure("real", f"clude <= {OVERHEAD_RATIO}x bare + {OVERHEAD_S} s", f"{sum(r.fast for r in rows)} of {n}",
               "all", all(r.fast for r in rows)),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
