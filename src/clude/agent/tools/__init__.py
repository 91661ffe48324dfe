"""The tools the coding agent's model calls: read, write and edit files, list and search them, run
shell commands and the tests, all confined to one workspace.

`Toolbox(root).specs()` gives the OpenAI function tool definitions; `Toolbox.call(name, arguments)`
runs a call as the model wrote it and never raises for the model's mistakes: bad JSON, unknown
tools, wrong arguments and paths outside the workspace come back as `ToolResult(is_error=True)` with
a message saying what to do. Every result is cut to the output budget and has secrets redacted.
"""

from clude.agent.tools.box import Toolbox
from clude.agent.tools.result import ToolResult
from clude.agent.tools.workspace import OutsideWorkspace, Workspace

__all__ = ["Toolbox", "ToolResult", "Workspace", "OutsideWorkspace"]
