"""Pre-flight checks, used by `clude doctor`, and by `clude run` and `clude team run` before they start:
git, the team's upstream and its protections, the backends, the model, the tests, the sandbox, disk.

- check.py   Check: one result (OK / WARN / ERROR and what to do)
- checks.py  run_checks: every check of a scope; git, upstream, backends, model, disk
- model.py   asking the configured model a question (doctor --model, models check)
- suite.py   the test command is found and its tests can be collected
- trust.py   the sandbox can be made; the upstream refuses force pushes and deletions
"""

from clude.doctor.check import Check
from clude.doctor.checks import refusal, run_checks
from clude.doctor.model import ask_model, probe_model

__all__ = ["Check", "ask_model", "probe_model", "refusal", "run_checks"]
