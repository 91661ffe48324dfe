"""`clude init`: find a local model server, the API keys set (by name), the agent CLIs and the test
command; propose a choice (asked on a terminal, the first found with --yes); write clude.toml; end with
`clude doctor`'s checks."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from clude.exits import INIT_ERROR, INIT_OK, USAGE


@dataclass(frozen=True)
class Wanted:
    """What the options chose, checked."""

    url: str | None
    model: str | None
    provider: str | None
    key_env: str | None
    backend: str | None
    probes: list[tuple[str, int]]


@click.command("init")
@click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), help="The project directory, where clude.toml is written [default: .].")
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: take the first model and backend found, in "
                                                "the order listed (local servers first, then API keys).")
@click.option("--force", is_flag=True, help="Replace the project's existing configuration.")
@click.option("--model-url", metavar="URL", help="The model server's URL, e.g. http://127.0.0.1:8080/v1 "
                                                 "(any OpenAI-compatible server, or Anthropic's).")
@click.option("--model", metavar="NAME", help="The model's name, as its server knows it.")
@click.option("--provider", type=click.Choice(["openai", "anthropic"]), default=None,
              help="With --model-url: the server's wire format [default: openai].")
@click.option("--api-key-env", metavar="NAME", help="The NAME of the variable that holds the key (never "
                                                    "the key): with --model-url, or to choose a key found.")
@click.option("--backend", metavar="NAME", help="The agent CLI of `clude team run`: clude (its own agent, "
                                                "on [model]), claude, codex, aider or gemini.")
@click.option("--probe", "probes", multiple=True, metavar="HOST:PORT", envvar="CLUDE_INIT_PROBE",
              help="Look for a model server here instead of the usual ports (repeatable; loopback only) "
                   "[env: CLUDE_INIT_PROBE, space-separated].")
@click.option("--no-doctor", is_flag=True, help="Write clude.toml and stop (check later with clude doctor).")
@click.option("--ask", is_flag=True, hidden=True, help="Ask even when stdin is not a terminal.")
def init_command(project, yes, force, model_url, model, provider, api_key_env, backend, probes, no_doctor,
                 ask) -> None:
    """Write clude.toml for this project: the model (a local server found on 127.0.0.1, or an API key
    of the environment, by its name), the team's agent CLI, and the tests detected; then run
    `clude doctor`.

    \b
    Exit codes: 0 written and doctor finds no ERROR, 4 nothing usable found or doctor finds an ERROR
    (clude.toml is written then), 2 bad usage or an existing configuration (without --force).
    """
    from clude.config.proposal import Refusal

    root = project.resolve()
    try:
        wanted = _wanted(model_url, model, provider, api_key_env, backend, probes)
        target = _target(root, force)
        findings = _discover(root, wanted)
        _show(findings, wanted)
        interactive = (ask or sys.stdin.isatty()) and not yes
        choice = _choose_model(findings, wanted, yes=yes, interactive=interactive)
        backend = _choose_backend(findings, wanted, choice, yes=yes, interactive=interactive)
    except Refusal as error:
        click.echo(f"clude init: {error}", err=True)
        sys.exit(USAGE)
    except _NothingFound as error:
        click.echo(f"clude init: {error}", err=True)
        sys.exit(INIT_ERROR)
    _write(target, choice, backend, findings.tests)
    click.echo(f"\nwrote {target}: model {choice.label() if choice else '(none)'}; backend {backend}")
    if no_doctor:
        sys.exit(INIT_OK)
    from clude.cli.doctor_cmd import report

    click.echo(f"\nclude doctor --backend {backend}:")
    ok = report(root, backends=[backend])
    if ok:
        click.echo("\nready: " + ("clude run \"GOAL\" for one agent; " if choice else "")
                   + "clude team init, then clude team run, for a team")
        sys.exit(INIT_OK)
    click.echo(f"\nclude init: {target.name} is written; fix the ERRORs above, then `clude doctor` checks again",
               err=True)
    sys.exit(INIT_ERROR)


class _NothingFound(Exception):
    """Nothing to configure: no model and no agent CLI (the message says what was looked for)."""


def _wanted(model_url, model, provider, api_key_env, backend, probes) -> Wanted:
    from clude.config.proposal import Refusal, backend_name, model_name, model_url as checked_url, \
        probe_address, variable_name

    url = checked_url(model_url) if model_url is not None else None
    if provider and url is None:
        raise Refusal(f"--provider {provider}: it goes with --model-url URL (the found servers and keys "
                      "say their own)")
    return Wanted(url, model_name(model) if model is not None else None, provider,
                  variable_name(api_key_env) if api_key_env is not None else None,
                  backend_name(backend) if backend is not None else None,
                  list(dict.fromkeys(probe_address(p) for p in probes)))


def _target(root: Path, force: bool) -> Path:
    """clude.toml in the project; refused when a configuration applies here already (unless --force)."""
    from clude.config.files import CONFIG_FILE, ConfigError, find_config
    from clude.config.proposal import Refusal

    target = root / CONFIG_FILE
    try:
        found = find_config(root)
    except ConfigError as error:
        raise Refusal(str(error)) from None
    if found and not force:
        path, table = found
        if path == target:
            raise Refusal(f"{path} exists: edit it, or replace it with clude init --force")
        what = f"{path} [{table}]" if table else str(path)
        raise Refusal(f"{what} already configures this project: edit it, or write {target} in its place "
                      "with clude init --force")
    return target


def _discover(root: Path, wanted: Wanted):
    from clude.config.discover import (default_addresses, found_clis, found_keys, found_tests, load_table,
                                       probe_servers)
    from clude.config.proposal import Findings

    table = load_table()
    env = dict(os.environ)
    addresses = wanted.probes or default_addresses(table)
    servers = probe_servers(addresses, table) if wanted.url is None else []
    return Findings(servers=servers, addresses=addresses, keys=found_keys(env, table), clis=found_clis(env),
                    tests=found_tests(root, env))


def _show(findings, wanted: Wanted) -> None:
    from clude.config.discover import load_table
    from clude.config.proposal import MODELS_SHOWN, shown_tests

    if wanted.url is None:
        where = " ".join(f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in findings.addresses)
        click.echo(f"Model servers on this machine ({where}):")
        for server in findings.servers:
            models = ", ".join(server.models[:MODELS_SHOWN]) or f"no model ({server.kind.empty})"
            more = f" and {len(server.models) - MODELS_SHOWN} more" if len(server.models) > MODELS_SHOWN else ""
            click.echo(f"  {server.kind.name} at {server.base_url}: {models}{more}")
        if not findings.servers:
            click.echo("  none answers")
    click.echo("API keys in the environment (names only):")
    for key in findings.keys:
        click.echo(f"  ${key.kind.env} ({key.kind.about})")
    if not findings.keys:
        click.echo(f"  none of {', '.join(k.env for k in load_table().keys)} is set")
    click.echo("Agent CLIs:")
    for cli in findings.clis:
        click.echo(f"  {cli.name:<7} {cli.path + ' — ' if cli.path else ''}{cli.note}")
    click.echo(f"Tests: {shown_tests(findings.tests)}")


def _choose_model(findings, wanted: Wanted, *, yes: bool, interactive: bool):
    """The [model] to write (None: none), from the options, else from what was found."""
    from clude.config.discover import models_at
    from clude.config.proposal import ModelChoice, Refusal, model_candidates, model_named

    if wanted.url is not None:
        names = [wanted.model] if wanted.model else models_at(wanted.url)
        if not names:
            raise Refusal(f"--model-url {wanted.url}: its server lists no model at /models (or does not "
                          "answer): give the model's name with --model NAME")
        index = _pick("Model", names, yes=yes, interactive=interactive, flag="--model NAME")
        return ModelChoice(wanted.provider or "openai", names[index], wanted.url, wanted.key_env,
                           "given with --model-url")
    keys = findings.keys
    if wanted.key_env is not None:
        keys = [k for k in keys if k.kind.env == wanted.key_env]
        if not keys:
            known = ", ".join(k.kind.env for k in findings.keys) or "none is set"
            raise Refusal(f"--api-key-env {wanted.key_env}: not among the key variables found set ({known}); "
                          "for another server, give its URL with --model-url")
        if not wanted.model:
            return model_candidates([], keys)[0]
    if wanted.model:
        return model_named(wanted.model, [] if wanted.key_env else findings.servers, keys)
    candidates = model_candidates(findings.servers, keys)
    if not candidates:
        return None
    labels = [c.label() for c in candidates]
    index = _pick("Model", labels, yes=yes, interactive=interactive, flag="--model NAME (or --model-url)",
                  none="none: no [model] (only an agent CLI)")
    return None if index < 0 else candidates[index]


def _choose_backend(findings, wanted: Wanted, model, *, yes: bool, interactive: bool) -> str:
    from clude.config.proposal import Refusal, backend_options

    if wanted.backend:
        if wanted.backend == "clude" and model is None:
            raise Refusal("--backend clude: clude's own agent needs a model, and none was found or chosen: "
                          "start a local model server, set an API key, or give --model-url URL --model NAME")
        return wanted.backend
    options = backend_options(model, findings.clis)
    if not options and (findings.servers or findings.keys or wanted.url):  # a model was offered, not taken
        raise Refusal("no model chosen, and no agent CLI is on PATH to work without one: choose a model, or "
                      "install an agent CLI (claude, codex, aider, gemini) and run clude init again")
    if not options:
        raise _NothingFound(_nothing(findings))
    about = {c.name: f"{c.path} — {c.note}" for c in findings.clis}
    labels = [f"{name} — {'its own agent, on the model above' if name == 'clude' else about[name]}"
              for name in options]
    return options[_pick("Backend of `clude team run`", labels, yes=yes, interactive=interactive,
                         flag="--backend NAME")]


def _nothing(findings) -> str:
    from clude.config.discover import load_table

    table = load_table()
    ports = ", ".join(f"{k.name} on {k.port}" for k in table.servers)
    return (f"found no model server on this machine ({ports}), no API key "
            f"({', '.join(k.env for k in table.keys)}), and no agent CLI on PATH "
            f"({', '.join(c.name for c in findings.clis)}): start a model server (e.g. llama-server -m "
            "MODEL.gguf --port 8080, or ollama serve) or export an API key, then run clude init again; "
            "or name a server with --model-url URL --model NAME")


def _pick(title: str, labels: list[str], *, yes: bool, interactive: bool, flag: str,
          none: str | None = None) -> int:
    """The index chosen among `labels` (-1: `none`): the first with --yes, or when it is the only one
    (and, on a terminal, `none` may not be chosen instead); asked on a terminal; refused otherwise."""
    if yes or (len(labels) == 1 and not (interactive and none)):
        return 0
    if not interactive:
        from clude.config.proposal import Refusal

        raise Refusal(f"{len(labels)} choices for the {title.lower()} and no terminal to ask on: pass --yes "
                      f"to take the first ({labels[0]}), or choose with {flag}")
    click.echo(f"\n{title}:")
    for n, label in enumerate(labels, 1):
        click.echo(f"  {n}. {label}")
    if none:
        click.echo(f"  0. {none}")
    answer = click.prompt("Choose", type=click.IntRange(0 if none else 1, len(labels)), default=1)
    return answer - 1


def _write(target: Path, model, backend: str, tests) -> None:
    """clude.toml, read back (tomllib, then the settings' own validation) before it replaces anything."""
    import tomllib

    from clude.config.proposal import render
    from clude.config.settings import Settings
    from clude.team.backends import get_backend

    text = render(model, backend, tests, clude_forwards=get_backend("clude").forwarded_env())
    Settings.model_validate(tomllib.loads(text))  # what is written is what clude reads
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, target)
    except OSError as error:
        scratch.unlink(missing_ok=True)
        click.echo(f"clude init: cannot write {target}: {error.strerror or error}", err=True)
        sys.exit(USAGE)
