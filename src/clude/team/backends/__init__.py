"""The agent CLIs a team worker runs (clude, claude, codex, aider, gemini, any command), and how to tell
an agent that could not work (an infrastructure failure) from one that did (data/*.toml)."""

from clude.team.backends.base import BASE_ENV, AgentRun, Backend, agent_env, get_backend
from clude.team.backends.spec import BackendSpec, backend_names
from clude.team.backends.infra import InfraFailure, classify

__all__ = ["AgentRun", "BASE_ENV", "Backend", "BackendSpec", "InfraFailure", "agent_env", "backend_names",
           "classify", "get_backend"]
