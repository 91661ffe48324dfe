"""How any untrusted process starts: agents, their shell commands and the project's tests run inside
bubblewrap (a read-only machine, their own work tree writable, credentials and clude's state hidden,
their own PID namespace, exactly the environment they are given), or as they are with --sandbox off."""

from clude.sandbox.env import allowed_env
from clude.sandbox.sandbox import (INSIDE_VAR, Sandbox, SandboxUnavailable, agent_sandbox, inside_sandbox,
                                   install_hint, make_undumpable, probe, problem)

__all__ = ["INSIDE_VAR", "Sandbox", "SandboxUnavailable", "agent_sandbox", "inside_sandbox", "install_hint",
           "make_undumpable", "probe", "problem", "allowed_env"]
