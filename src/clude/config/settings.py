"""The typed settings of clude.toml. Every section forbids unknown keys."""

from __future__ import annotations

import shlex
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

FrameworkName = Literal["pytest", "unittest", "node", "go", "cargo", "jest", "vitest", "generic"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class TestConfig(Section):
    """[test]: how `clude test` (and every agent's verification) runs the project's tests."""

    __test__ = False  # not a pytest test class

    command: list[str] | str | None = Field(
        default=None, description="the test command, as a list or a shell-like string")
    framework: FrameworkName | None = Field(
        default=None, description="how to read its results, when clude cannot tell from the command")
    timeout: float = Field(default=900.0, gt=0, le=86_400, description="seconds before the run is killed")
    junit: str | None = Field(
        default=None, description="a JUnit XML file the command writes, for frameworks clude "
                                  "cannot instrument (path relative to the project)")
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables for the test command")
    pass_env: list[str] = Field(
        default_factory=list, description="NAMES of variables of clude's environment the tests get, "
                                          "besides PATH, HOME, the locale and the interpreters' own "
                                          "(agents' tests never get anything else: no API keys)")

    def argv(self) -> list[str] | None:
        if self.command is None:
            return None
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


class QuirksEntry(Section):
    """One [[model.quirks]] entry: settings for the models whose name matches (before built-ins)."""

    patterns: list[str] = Field(default_factory=list, description="case-insensitive globs")
    regex: str | None = None
    tool_role: bool | None = None
    system_role: bool | None = None
    tool_id_style: Literal["keep", "mistral"] | None = None
    native_tools: bool | None = None
    parallel_tool_calls: bool | None = None
    call_text: Literal["inline", "separate"] | None = None


class Price(Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0, le=10_000)
    output: float = Field(ge=0, le=10_000)


class ModelConfig(Section):
    """[model]: the chat model clude's own agent uses."""

    provider: Literal["openai", "anthropic", "scripted"] = Field(
        default="openai", description="openai: any OpenAI-compatible server (llama.cpp, vLLM, "
                                      "Ollama, OpenAI, OpenRouter); anthropic: the Anthropic API; "
                                      "scripted: replies replayed from `script` (demos, tests)")
    name: str = Field(default="", description="the model name the server knows")
    base_url: str | None = Field(default=None, description="the server's URL (default: the provider's)")
    api_key_env: str | None = Field(
        default=None, description="the NAME of the environment variable holding the key "
                                  "(default: OPENAI_API_KEY or ANTHROPIC_API_KEY); never the key")
    max_tokens: int = Field(default=4096, gt=0, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    timeout: float = Field(default=120.0, gt=0, le=3_600, description="seconds for one request")
    max_retries: int = Field(default=4, ge=0, le=10, description="retries on 429, 5xx and timeouts")
    tool_mode: Literal["auto", "native", "text"] = Field(
        default="auto", description="native tool calls, the fenced-block text protocol, or what "
                                    "the model's quirks say")
    quirks: list[QuirksEntry] = Field(default_factory=list)
    script: str | None = Field(
        default=None, description="provider scripted: a JSON file holding the list of replies, "
                                  "relative to the project")


class AgentConfig(Section):
    """[agent]: the limits and habits of `clude run`."""

    max_iterations: int = Field(default=30, ge=1, le=1000,
                                description="model turns per step before the step is failed")
    max_step_retries: int = Field(default=2, ge=0, le=20,
                                  description="retries of a failed step or a failed verification")
    max_replans: int = Field(default=2, ge=0, le=20, description="new plans after the first")
    max_plan_attempts: int = Field(default=3, ge=1, le=10,
                                   description="tries to get a valid plan before the run is blocked")
    verify: Literal["end", "each_step", "never"] = Field(
        default="end", description="run the tests after all steps, also after each step, or never")
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000_000,
                                  description="input+output tokens for the run")
    max_cost_usd: float | None = Field(default=None, gt=0, le=100_000, description="US dollars for the run")
    max_wall_s: float | None = Field(default=None, gt=0, le=604_800, description="seconds of running time")
    parallel: int = Field(default=1, ge=1, le=32, description="steps run at once (git worktrees)")
    shell_timeout: float = Field(default=120.0, gt=0, le=86_400, description="seconds for one shell command")
    output_budget: int = Field(default=8000, ge=500, le=1_000_000, description="bytes of a tool's output shown")
    allow_tests: bool = Field(default=False, description="let the agent change the tests and their "
                                                          "configuration (refused at verification "
                                                          "otherwise)")
    repeat_limit: int = Field(default=3, ge=2, le=100, description="same action and result in a row, "
                                                           "or the same error, before a step stops")


class TeamConfig(Section):
    """[team]: how `clude team` runs its workers."""

    upstream: str | None = Field(default=None, description="the team's upstream: a path or any git URL")
    agents: int = Field(default=3, ge=1, le=64, description="workers `clude team run` starts")
    backend: str = Field(default="clude", description="the agent CLI workers run (see [backends.NAME])")
    roles: dict[str, Annotated[int, Field(ge=1, le=64)]] = Field(default_factory=dict,
                                                              description="role -> number of workers")
    roles_dir: str | None = Field(default=None, description="a folder of ROLE.md prompts that replace "
                                                            "the built-in ones")
    max_attempts: int = Field(default=3, ge=1, le=100, description="a new task's attempts")
    goal: str | None = Field(default=None, description="what the team works towards: with `team run --forever`, "
                                                        "a planner proposes the next tasks for it when the board "
                                                        "is empty")
    max_auto_tasks: int = Field(default=10, ge=0, le=1000, description="tasks the planner of `team run --forever` "
                                                                       "may add in one run, in all (0: none)")
    verify: Literal["tests", "none"] = Field(
        default="tests", description="verify each task with the tests, or land unverified when the "
                                     "project has no tests")
    lease_s: float = Field(default=120.0, ge=1, le=86_400, description="seconds a lock lives without renewal")
    overlap: Literal["apart", "ignore"] = Field(
        default="apart", description="apart: a worker does not take a task whose files overlap a task in "
                                     "progress while another is ready; ignore: take the best task whatever "
                                     "its files")
    poll_s: float = Field(default=5.0, gt=0, le=3_600, description="seconds between looks for work when idle")
    agent_timeout_s: float = Field(default=3600.0, gt=0, le=604_800, description="seconds one agent run may take")
    workdir: str = Field(default=".clude/agents", description="where local workers keep their clones")
    max_file_mb: float = Field(default=50.0, gt=0, le=100_000, description="the largest file an agent's "
                                                                         "change may hold, in MB")
    protected: list[str] = Field(default_factory=list, description="more files (globs) an agent may "
                                                                   "not change unless its task allows test "
                                                                   "changes, besides the tests and their config")
    never_land: list[str] = Field(default_factory=list, description="more files (globs) an agent's tool "
                                                                    "leaves that never land, besides what its "
                                                                    "backend declares and editor swap files")
    heartbeat_s: float = Field(default=5.0, gt=0, le=3_600, description="seconds between a worker's heartbeats; "
                                                               "silent for 6 of them, it is restarted")
    crash_loop: int = Field(default=3, ge=1, le=100, description="starts failing before any work, in a row, "
                                                         "that block a worker")
    crash_window_s: float = Field(default=600.0, gt=0, le=86_400, description="... within this many seconds")
    restart_s: float = Field(default=1.0, gt=0, le=3_600, description="first restart delay (doubled, capped)")
    restart_cap_s: float = Field(default=60.0, gt=0, le=86_400, description="longest restart delay")


class SandboxConfig(Section):
    """[sandbox]: the bubblewrap sandbox every agent, its shell commands and the tests run in."""

    mode: Literal["on", "off"] = Field(
        default="on", description="on: bubblewrap, required (agents are not started without it); "
                                  "off: no sandbox (an agent can read your credentials and reach "
                                  "the upstream)")
    network: bool = Field(default=True, description="share the host's network (the model must be "
                                                     "reached); false cuts it for agents and tests")
    hidden: list[str] = Field(default_factory=list, description="more paths agents and tests must not see")
    readable: list[str] = Field(default_factory=list, description="paths kept visible (read-only) "
                                                                  "inside hidden ones")
    writable: list[str] = Field(default_factory=list, description="more writable paths, e.g. a "
                                                                  "shared cache (any agent can change "
                                                                  "what is in them)")


class BackendConfig(Section):
    """[backends.NAME]: an agent CLI, built in (clude, claude, codex, aider, gemini, command) or new."""

    command: list[str] | str | None = Field(
        default=None, description="the command line; placeholders {prompt_file} {prompt} {task_id} "
                                  "{workdir} {agent_id}")
    prompt_via: Literal["file", "stdin", "arg"] | None = Field(
        default=None, description="how the prompt reaches the agent")
    env: list[str] = Field(default_factory=list, description="NAMES of variables to forward to it")
    required_env: list[str] | None = Field(
        default=None, description="NAMES that must be set (one of them for a list of alternatives "
                                  "written 'A|B')")
    result: Literal["clude", "claude", "codex", "aider", "gemini", "text"] | None = Field(
        default=None, description="how to read what it reports")
    sandbox_home: list[str] | None = Field(
        default=None, description="entries of the home folder the agent keeps, writable, inside the "
                                  "sandbox (its own login and config, e.g. .claude)")
    never_land: list[str] = Field(default_factory=list, description="more files (globs) this tool leaves "
                                                                    "in the tree that never land")
    timeout_s: float | None = Field(default=None, gt=0, le=604_800)


class Settings(Section):
    test: TestConfig = Field(default_factory=TestConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    team: TeamConfig = Field(default_factory=TeamConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(
        default_factory=dict, description="model-name glob -> price, before the built-in table")
