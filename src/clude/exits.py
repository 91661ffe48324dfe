"""Every exit code clude's commands end with, in one table (docs/exit-codes.md is written from it and a
test keeps the two equal). Standard library only: `clude test` reads it before anything heavy."""

from __future__ import annotations

USAGE = 2          # every command: a usage or configuration error (click's own code for bad arguments)
INTERRUPTED = 130  # every command: stopped by Ctrl-C / SIGTERM (128 + SIGINT)

# command -> {code: meaning}; each row is what a script may rely on.
TABLE: dict[str, dict[int, str]] = {
    "clude test": {
        0: "passed: a success exit code, no failure or error, at least one test ran",
        1: "failed: tests failed or errored",
        3: "error: nothing could run, a collection error, or an exit code that disagrees with the counts",
        4: "no_tests: nothing collected, or every test skipped",
        5: "timeout: killed at the timeout",
        6: "crashed: killed by a signal clude did not send, or exited before its results were complete",
        7: "with --compare: a test that passed before does not pass now",
    },
    "clude run / clude resume": {
        0: "done: the plan's steps are done and the verification passed",
        1: "failed: a step or the verification failed for good",
        3: "blocked: no valid plan, the plan rejected, a budget used up, an empty goal",
        4: "error: the model or the test command cannot be used (fix it, then `clude resume`)",
    },
    "clude team run": {
        0: "every task is done",
        1: "tasks are left failed, blocked or not done",
        4: "the workers cannot work here: every worker blocked (their reasons are printed), or no sandbox",
    },
    "clude team demo": {
        0: "the demo ended as designed (3 tasks done, 1 failed after 3 attempts, one worker blocked)",
        1: "it did not",
    },
    "clude team status / clude team task / clude team serve": {
        0: "shown, the task added, retried, blocked or unblocked (a refused change is a usage error, 2)",
        4: "the team's upstream cannot be read or changed (out of reach, or it refuses this machine)",
    },
    "clude team pause / resume / stop": {
        0: "done (pause and resume also when there was nothing to change)",
        1: "stop: no `clude team run` of this project is running",
    },
    "clude team plan": {
        0: "the tasks added (or, with --json and without --yes, shown)",
        1: "the plan rejected: nothing added",
        3: "the model gave no valid plan within --attempts replies (its last errors are printed)",
        4: "the model cannot be used, or the team's upstream cannot be changed",
    },
    "clude init": {
        0: "clude.toml written, and the doctor found no ERROR",
        4: "written, but the doctor found an ERROR; or nothing usable was found (nothing written)",
    },
    "clude team worker": {
        0: "finished: no task left to do, --max-tasks reached, or told the team's work is finished",
        3: "the upstream refuses pushes for another reason than a race (hooks, permissions, disk)",
        4: "the agent cannot run here: its environment failed the same way several times in a row",
        5: "an unexpected error in the worker (its traceback is in the worker's log); the task given back",
    },
    "clude doctor": {
        0: "nothing at ERROR level (warnings may be printed)",
        4: "an ERROR: the environment cannot be used as it is",
    },
    "clude models check": {
        0: "the model answered",
        4: "the model cannot be used: out of reach, a key refused or missing, no such model, no usable answer",
    },
}
COMMON = {USAGE: "a usage or configuration error (the message names the option, file or key)",
          INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)"}

# The codes as names, for the code that ends with them.
TEST_FAILED, TEST_ERROR, TEST_NO_TESTS, TEST_TIMEOUT, TEST_CRASHED, TEST_REGRESSIONS = 1, 3, 4, 5, 6, 7
RUN_DONE, RUN_FAILED, RUN_BLOCKED, RUN_ERROR = 0, 1, 3, 4
TEAM_DONE, TEAM_TASKS_LEFT, TEAM_INFRA = 0, 1, 4
DEMO_AS_DESIGNED, DEMO_NOT_AS_DESIGNED = 0, 1
TEAM_VIEW_OK, TEAM_VIEW_UNREACHABLE = 0, 4
STOP_SENT, STOP_NO_RUN = 0, 1
INIT_OK, INIT_ERROR = 0, 4
PLAN_ADDED, PLAN_REJECTED, PLAN_BLOCKED, PLAN_ERROR = 0, 1, 3, 4
WORKER_SETTLED, WORKER_UPSTREAM, WORKER_INFRA, WORKER_CRASHED = 0, 3, 4, 5
DOCTOR_OK, DOCTOR_ERROR = 0, 4
MODELS_OK, MODELS_ERROR = 0, 4


def markdown() -> str:
    """docs/exit-codes.md."""
    out = ["# Exit codes", "",
           "What each of clude's commands ends with. Every command also ends with "
           + " and ".join(f"{code} for {text}" for code, text in COMMON.items()) + ".", ""]
    for command, codes in TABLE.items():
        out += [f"## {command}", "", "| code | meaning |", "|---|---|"]
        out += [f"| {code} | {text} |" for code, text in codes.items()]
        out.append("")
    return "\n".join(out)
