"""The tools as the model sees them: argument models (validation) and descriptions, as OpenAI
function tool definitions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Args(BaseModel):
    """Arguments of one tool: unknown names are refused, so a misspelt argument is never ignored."""

    model_config = ConfigDict(extra="forbid")


PATH = "Path relative to the workspace root, e.g. src/app.py (an absolute path must lie inside the workspace)."


class ReadFileArgs(Args):
    path: str = Field(description=PATH)
    start_line: int | None = Field(None, ge=1, description="First line to show (1-based). Default: 1.")
    end_line: int | None = Field(None, ge=1, description="Last line to show (inclusive). Default: the "
                                 "end of the file, or as far as the output budget allows.")


class WriteFileArgs(Args):
    path: str = Field(description=PATH + " Missing folders are created.")
    content: str = Field(description="The complete new content of the file, exactly as it should be "
                         "saved (no line numbers). End it with a newline.")


class EditFileArgs(Args):
    path: str = Field(description=PATH)
    search: str = Field(description="The exact text to replace, character for character, including "
                        "indentation; several whole lines are safest. It must occur exactly once "
                        "in the file.")
    replace: str = Field(description="The text to put in its place (empty to delete it).")


class ListFilesArgs(Args):
    path: str = Field(".", description="Folder to list, relative to the workspace root. Default: the root.")
    pattern: str | None = Field(None, description="Optional glob filter: '*.py' matches file names at "
                                "any depth; 'src/**/*.py' matches paths; braces work: '*.{ts,tsx}'.")


class GrepArgs(Args):
    pattern: str = Field(description="Python regular expression searched in each line, e.g. "
                         "'def parse_\\w+' or 'class Config\\b'. Escape ( ) [ ] . * + ? to match them "
                         "literally.")
    path: str = Field(".", description="File or folder to search, relative to the workspace root. "
                      "Default: the whole workspace.")
    glob: str | None = Field(None, description="Optional filter on the files searched, like "
                             "list_files' pattern: '*.py', 'tests/**/*.py'.")
    ignore_case: bool = Field(False, description="Match regardless of upper/lower case.")


class RunShellArgs(Args):
    command: str = Field(description="The command line, run by bash -c in the workspace root, e.g. "
                         "'python -m pytest -x -q tests/test_api.py' or 'git diff --stat'.")
    timeout_s: float | None = Field(None, gt=0, description="Seconds before the command is killed. "
                                    "Default: {timeout} s; at most {max_timeout} s.")


class RunTestsArgs(Args):
    pass


READ_FILE = (
    "Read a text file of the workspace. Its lines come back numbered, like '  12 | text'; the "
    "numbers are not part of the file, so never copy them into edit_file or write_file. A long file "
    "is cut at the output budget ({budget} bytes) and the answer says which start_line reads on. "
    "When you know where to look (from grep, a traceback, a test failure), read just that part with "
    "start_line and end_line.")
WRITE_FILE = (
    "Create a file, or replace the whole content of one, with `content`; missing folders are "
    "created. Use it for new files and complete rewrites; to change part of an existing file use "
    "edit_file, which is safer and shorter. Nothing can be written in .git/ or .clude/.")
EDIT_FILE = (
    "Change an existing file by replacing one exact occurrence of `search` with `replace`. `search` "
    "must be the file's current text character for character (indentation, blank lines and all; "
    "copy it from a recent read_file without the line numbers) and occur exactly once: add a few "
    "unchanged neighbouring lines when it alone is not unique. To insert, search for the line next "
    "to the spot and repeat it in replace with the new text; to delete, leave replace empty. When "
    "the text is not found, the error shows the closest lines of the file: copy them exactly and "
    "retry. One call changes one place; make several calls for several places.")
LIST_FILES = (
    "List the files under a folder of the workspace, recursively, as sorted paths relative to the "
    "workspace root. Skips .git, .clude, __pycache__, node_modules, .venv/venv and tool caches. "
    "Use it to find your way around a project before reading files; filter with `pattern`. At most "
    "500 paths are listed.")
GREP = (
    "Search the contents of the workspace's text files for a regular expression (Python syntax, "
    "matched within one line). Answers 'file:line: text' for each matching line, sorted by file. "
    "Use it to find where something is defined or used before reading or editing; then read_file "
    "with start_line near the line found. Binary files and the folders list_files skips are not "
    "searched; at most 200 matches are shown.")
RUN_SHELL = (
    "Run a shell command (bash -c) in the workspace root and get its exit code and its output "
    "(stdout and stderr together). Use it to run programs and scripts, build, install "
    "dependencies, use git, or inspect things the other tools do not cover. Each call is a new "
    "shell: cd and exported variables do not carry over (chain with && instead). There is no "
    "input: stdin is empty, so commands that ask questions fail (pass -y or similar). Whatever the "
    "command leaves running in the background is killed when it ends, and it is killed after "
    "{timeout} s unless you give timeout_s (at most {max_timeout} s). Long output is cut to its "
    "beginning and end; the whole output is saved in a file named in the answer, which read_file "
    "and grep can search. Secret environment variables (API keys, tokens) are not available. Prefer "
    "read_file, list_files and grep to cat, ls and grep in the shell.")
RUN_TESTS = (
    "Run the project's test suite exactly as the final verification will and get a concise "
    "report: one line per failing test with its file:line and reason, then the counts and the path "
    "of the full report. Its verdict is the one that counts, so use it to check your work; takes "
    "no arguments.")

# name -> (argument model, description template)
TOOLS: dict[str, tuple[type[Args], str]] = {
    "read_file": (ReadFileArgs, READ_FILE),
    "write_file": (WriteFileArgs, WRITE_FILE),
    "edit_file": (EditFileArgs, EDIT_FILE),
    "list_files": (ListFilesArgs, LIST_FILES),
    "grep": (GrepArgs, GREP),
    "run_shell": (RunShellArgs, RUN_SHELL),
    "run_tests": (RunTestsArgs, RUN_TESTS),
}


def fill(text: str, values: dict[str, Any]) -> str:
    """The text with its {name} placeholders replaced (other braces, as in '*.{ts,tsx}', stay)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def parameters(model: type[Args], values: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, kept simple for strict chat templates: no titles, no
    anyOf for optional values, no null defaults."""
    schema = model.model_json_schema()
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        if "anyOf" in prop:
            kinds = [p for p in prop.pop("anyOf") if p.get("type") != "null"]
            if len(kinds) == 1:
                prop.update(kinds[0])
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        if "description" in prop:
            prop["description"] = fill(prop["description"], values)
        properties[name] = {"type": prop.pop("type", "string"), **prop}
    return {"type": "object", "properties": properties, "required": schema.get("required", []),
            "additionalProperties": False}


def tool_spec(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """One OpenAI function tool definition; `values` fill the {placeholders} of the texts."""
    model, description = TOOLS[name]
    return {"type": "function", "function": {"name": name, "description": fill(description, values),
                                             "parameters": parameters(model, values)}}


def signature(name: str) -> str:
    """How a tool is called, for error messages: 'read_file(path: string, start_line?: integer, ...)'."""
    props = parameters(TOOLS[name][0], {"timeout": "N", "max_timeout": "4N", "budget": "N"})
    required = set(props["required"])
    args = ", ".join(f"{n}{'' if n in required else '?'}: {p['type']}"
                     for n, p in props["properties"].items())
    return f"{name}({args})"
