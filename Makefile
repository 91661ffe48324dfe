# The two Quick start commands: `make demo` (clude's main job on its bundled example) and `make test`.
# Each creates .venv and installs what it needs; nothing else must be installed by hand.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

# `clude test` on examples/calc, which has one failing test: exit 1 is the expected verdict.
demo: $(STAMP)
	@cd examples/calc && ../../$(VENV)/bin/clude test --no-cache; code=$$?; \
	if [ $$code -eq 1 ]; then echo "(exit 1 = failed: the example's bug, reported above as file:line and reason)"; \
	else echo "unexpected exit code $$code"; exit 1; fi

# The whole suite. pytest exits 5 when it collects nothing, which fails this target too.
test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) examples/*/.clude
