"""`clude init`'s rules, without I/O: what a probed address is (from its answers and the table of
data/discover.toml), what can be proposed from what was found, which choice `--yes` takes, and the
clude.toml that says it. discover.py does the looking; cli/init_cmd.py asks and writes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MODELS_SHOWN = 8  # models of one server proposed one by one (--model NAME takes any of them)
BACKENDS = ("clude", "claude", "codex", "aider", "gemini")  # what --backend may name here
PROVIDERS = ("openai", "anthropic")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Answer = tuple[int, Any]  # (HTTP status, the JSON body or None); status 0: no answer at all


class Refusal(Exception):
    """Input or a situation `clude init` cannot go on with; the message names the option or value at fault."""


# the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerKind:
    name: str
    about: str
    base: str
    models: str
    listing: str  # how the models answer is read: openai or ollama
    empty: str = ""
    port: int | None = None
    signature: str | None = None
    signature_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyKind:
    env: str
    about: str
    provider: str
    model: str
    base_url: str | None = None


@dataclass(frozen=True)
class Table:
    timeout_s: float
    host: str
    servers: tuple[ServerKind, ...]
    fallback: ServerKind
    keys: tuple[KeyKind, ...]

    def paths(self) -> list[str]:
        """Every path asked of each address, once."""
        out: list[str] = []
        for kind in (*self.servers, self.fallback):
            for path in (kind.signature, kind.models):
                if path and path not in out:
                    out.append(path)
        return out


def table_of(raw: Mapping[str, Any]) -> Table:
    """The table as data/discover.toml writes it."""
    def server(entry: Mapping[str, Any]) -> ServerKind:
        known = {k: v for k, v in entry.items() if k in ServerKind.__dataclass_fields__}
        return ServerKind(**{**known, "signature_keys": tuple(entry.get("signature_keys", ()))})

    return Table(float(raw["probe_timeout_s"]), str(raw["host"]), tuple(server(s) for s in raw["server"]),
                 server(raw["fallback"]), tuple(KeyKind(**k) for k in raw["key"]))


# what was found -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundServer:
    kind: ServerKind
    host: str
    port: int
    models: tuple[str, ...]

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}{self.kind.base}"


@dataclass(frozen=True)
class FoundKey:
    kind: KeyKind
    base_url_env: str | None = None  # $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL is set: requests go there


@dataclass(frozen=True)
class FoundCli:
    name: str
    program: str
    path: str | None  # None: not on PATH
    ready: bool  # its required variable (or its own login) is there
    note: str  # what it needs, or how to install it


@dataclass(frozen=True)
class FoundTests:
    command: str | None  # None: nothing found (`reasons` says why)
    framework: str = ""
    reasons: tuple[str, ...] = ()  # the evidence, as `clude test --explain` gives it

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    name: str
    base_url: str | None
    api_key_env: str | None
    source: str  # where it was found: "llama.cpp at 127.0.0.1:8080", "$OPENAI_API_KEY (OpenAI)", ...

    def label(self) -> str:
        return f"{self.name} — {self.source}"


def identify(port: int, answers: Mapping[str, Answer], table: Table) -> ServerKind | None:
    """What answers at a port: the first server whose signature path answered as only it does, else
    the one of its port among those without a signature, else any server listing models the OpenAI
    way (table.fallback); None when nothing there lists models."""
    for kind in table.servers:
        status, body = answers.get(kind.signature or "", (0, None))
        if kind.signature and status == 200 and isinstance(body, dict) \
                and any(key in body for key in kind.signature_keys):
            return kind
    for kind in (*(k for k in table.servers if not k.signature and k.port == port), table.fallback):
        if listed_models(kind, answers.get(kind.models, (0, None))) is not None:
            return kind
    return None


def listed_models(kind: ServerKind, answer: Answer) -> list[str] | None:
    """The model names an answer to kind.models lists ([] for none), or None when it is no such list."""
    status, body = answer
    if status != 200 or not isinstance(body, dict):
        return None
    entries, key = (body.get("models"), "name") if kind.listing == "ollama" else (body.get("data"), "id")
    if not isinstance(entries, list):
        return None
    names = [str(e.get(key) or e.get("model") or "") for e in entries if isinstance(e, dict)]
    return [n for n in dict.fromkeys(names) if n.strip() and not _CONTROL.search(n)]


def found_server(host: str, port: int, answers: Mapping[str, Answer], table: Table) -> FoundServer | None:
    kind = identify(port, answers, table)
    if kind is None:
        return None
    return FoundServer(kind, host, port, tuple(listed_models(kind, answers.get(kind.models, (0, None))) or ()))


# options --------------------------------------------------------------------------------------
def probe_address(text: str, option: str = "--probe") -> tuple[str, int]:
    """(host, port) of a HOST:PORT to probe, loopback only."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise Refusal(f"{option} {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    if host.lower() not in LOOPBACK:
        raise Refusal(f"{option} {text!r}: only this machine is probed (a loopback host: "
                      f"{', '.join(LOOPBACK)}); name another server with --model-url URL")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Refusal(f"{option} {text!r}: the port must be a number from 1 to 65535")
    return host.lower(), int(port)


def model_url(text: str) -> str:
    """A --model-url, checked: http(s), a host, no credentials (never echoed when it holds some)."""
    from urllib.parse import urlsplit

    text = text.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise Refusal(f"--model-url {text!r}: not a URL ({error})") from None
    if parts.username or parts.password:
        raise Refusal("--model-url holds a user name or password: give the URL without it, put the key in "
                      "an environment variable and name that with --api-key-env")
    if parts.scheme not in ("http", "https") or not parts.hostname or _CONTROL.search(text):
        raise Refusal(f"--model-url {text!r}: give the server's http:// or https:// URL, e.g. "
                      "http://127.0.0.1:8080/v1")
    return text


def variable_name(text: str) -> str:
    """An --api-key-env: a variable's NAME. What was given is not echoed: it may be the key itself."""
    if not _VARIABLE.fullmatch(text.strip()):
        raise Refusal("--api-key-env takes the NAME of the environment variable that holds the key (e.g. "
                      "OPENAI_API_KEY), never the key itself: what was given is not a variable name")
    return text.strip()


def model_name(text: str) -> str:
    if not text.strip() or _CONTROL.search(text):
        raise Refusal(f"--model {text!r}: give the model's name as its server knows it")
    return text.strip()


def backend_name(text: str) -> str:
    if text not in BACKENDS:
        raise Refusal(f"--backend {text!r}: use one of {', '.join(BACKENDS)} (others: [backends.NAME] in "
                      "clude.toml, docs/team.md)")
    return text


# choosing -------------------------------------------------------------------------------------
def model_candidates(servers: Sequence[FoundServer], keys: Sequence[FoundKey]) -> list[ModelChoice]:
    """What can be proposed, best first: the models of the local servers (no key, nothing to pay) in
    the table's order, then the API keys in theirs."""
    out = [ModelChoice("openai", name, server.base_url, None, f"{server.kind.name} at {server.address}")
           for server in servers for name in server.models[:MODELS_SHOWN]]
    out += [key_choice(key) for key in keys]
    return out


def key_choice(key: FoundKey, name: str | None = None) -> ModelChoice:
    where = f" (requests go to ${key.base_url_env})" if key.base_url_env and not key.kind.base_url else ""
    return ModelChoice(key.kind.provider, name or key.kind.model, key.kind.base_url, key.kind.env,
                       f"${key.kind.env} ({key.kind.about}){where}")


def model_named(name: str, servers: Sequence[FoundServer], keys: Sequence[FoundKey]) -> ModelChoice:
    """--model NAME without --model-url: the first server listing it, else the first key's provider."""
    for server in servers:
        if name in server.models:
            return ModelChoice("openai", name, server.base_url, None, f"{server.kind.name} at {server.address}")
    if keys:
        return key_choice(keys[0], name)
    if servers:
        listed = "; ".join(f"{s.kind.name} at {s.address}: {', '.join(s.models[:MODELS_SHOWN]) or 'none'}"
                           for s in servers)
        raise Refusal(f"--model {name!r}: no server found lists it ({listed}); give its server with "
                      "--model-url URL")
    raise Refusal(f"--model {name!r}: found no model server and no API key to use it with: give its "
                  "server with --model-url URL (and --api-key-env NAME when it needs a key)")


def backend_options(model: ModelChoice | None, clis: Sequence[FoundCli]) -> list[str]:
    """The backends that can be proposed, best first: clude's own agent when there is a model, then
    the agent CLIs on PATH whose key or login is there, then those still missing one."""
    ready = [c.name for c in clis if c.path and c.ready]
    return (["clude"] if model else []) + ready + [c.name for c in clis if c.path and not c.ready]


# clude.toml -----------------------------------------------------------------------------------
def render(model: ModelChoice | None, backend: str, tests: FoundTests | None = None, *,
           clude_forwards: Sequence[str] = ()) -> str:
    """The clude.toml for this choice. `clude_forwards`: the variables the clude backend passes to its
    agents (when the model's key is not among them, [backends.clude] env adds it). Keys are named,
    never written."""
    lines = ["# clude.toml, written by `clude init`. Every key: README.md (Configuration) and docs/llm.md;",
             "# check it with `clude doctor`.", ""]
    if model is None:
        lines += ["# No [model]: `clude run` and the clude backend need one (`clude init --force` once a",
                  "# model server runs or an API key is set, or write it: docs/llm.md).", ""]
    else:
        lines += ["[model]", f"# {comment(model.source)}", f"provider = {string(model.provider)}",
                  f"name = {string(model.name)}"]
        if model.base_url:
            lines.append(f"base_url = {string(model.base_url)}")
        if model.api_key_env:
            lines.append(f"api_key_env = {string(model.api_key_env)}  # the variable holding the key (never "
                         "the key)")
        lines.append("")
    lines += ["[team]", f"backend = {string(backend)}  # the agent CLI `clude team run` starts"
              + ("; clude: its own agent, on [model]" if backend == "clude" else "")]
    key_env = model.api_key_env if model else None
    if backend == "clude" and key_env and key_env not in clude_forwards:
        lines += ["", "[backends.clude]", f"env = [{string(key_env)}]  # its agents need the [model] key"]
    lines.append("")
    if tests is not None and tests.command:
        lines += ["# The tests are detected at every run (`clude test --explain`); now "
                  f"`{comment(tests.command)}` ({comment(tests.framework)}), because:",
                  *(f"#   - {comment(reason)}" for reason in tests.reasons),
                  "# To fix the command, uncomment:", "# [test]", f"# command = {string(tests.command)}", ""]
    elif tests is not None:
        lines += [f"# No test command was found ({comment(tests.why)}). Set one:", "# [test]",
                  '# command = "python -m pytest -q"', ""]
    return "\n".join(lines)


def string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL, which TOML wants escaped, too)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def comment(text: str) -> str:
    """Text that stays inside one comment line."""
    return _CONTROL.sub(" ", text)


def shown_tests(tests: FoundTests) -> str:
    """The tests as doctor's line says them: `command` (framework: why)."""
    if not tests.command:
        return tests.why
    return f"`{tests.command}` ({tests.framework}: {tests.why})"


@dataclass
class Findings:
    """Everything `clude init` found, for printing and choosing."""

    servers: list[FoundServer] = field(default_factory=list)
    addresses: list[tuple[str, int, str]] = field(default_factory=list)  # (host, port, what was expected)
    keys: list[FoundKey] = field(default_factory=list)
    clis: list[FoundCli] = field(default_factory=list)
    tests: FoundTests | None = None
