"""The chaos run's agent (a `command` backend): does its task, unless the run's fault plan says
otherwise. Usage: agent.py PLAN.json TASK_ID PROMPT_FILE. The plan (written by chaos.py) decides every
fault from the seed; nothing here is random but the rate-limit bursts, which follow the clock."""

import json
import os
import pathlib
import re
import signal
import sys
import time

plan = json.loads(pathlib.Path(sys.argv[1]).read_text())
task, prompt = sys.argv[2], sys.argv[3]
agent = os.environ.get("CLUDE_AGENT_ID", "")
found = re.search(r"_attempt_(\d+)", pathlib.Path(prompt).name)
attempt = int(found.group(1)) if found else 1

if agent == plan["keyless"]:  # a backend whose key is not set
    print("Error: missing environment variable: CHAOS_API_KEY", file=sys.stderr)
    sys.exit(1)
if agent == plan["limited"] and time.time() % plan["burst_every_s"] < plan["burst_s"]:  # 429 bursts
    print(f"Error: 429 Too Many Requests: rate limit exceeded, retry after {plan['retry_after_s']} seconds",
          file=sys.stderr)
    sys.exit(1)
if task == plan["poisoned"]:  # an agent that always dies at start on this task
    print("Segmentation fault (core dumped)", file=sys.stderr)
    sys.exit(139)

fault = plan["faults"].get(f"{task}/{attempt}")
if fault == "crash":  # mid-task: something written, then gone as an aborted process goes (exit 134;
    pathlib.Path("scratch.txt").write_text("half done\n")  # a signal to itself would not do: in the
    os._exit(128 + signal.SIGABRT)                        # sandbox the agent is its namespace's pid 1
if fault == "hang":  # past its timeout
    time.sleep(plan["timeout_s"] * 10)

pathlib.Path("done").mkdir(exist_ok=True)
pathlib.Path("done", f"{task}.txt").write_text("ok\n")
if fault == "break":  # a change that breaks a test that passes on the upstream
    pathlib.Path("base.txt").write_text("broken\n")
print(f"did {task} (attempt {attempt})")
