"""`clude models check`: can the configured model be reached and does it answer? OK, or the precise error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clude.exits import MODELS_ERROR as EXIT_ERROR, MODELS_OK as EXIT_OK, USAGE as EXIT_USAGE


@click.group("models")
def models_group() -> None:
    """The chat model clude's agent uses ([model] in clude.toml)."""


@models_group.command("check")
@click.option("--provider", type=click.Choice(["openai", "anthropic"]), default=None,
              help="Override [model] provider.")
@click.option("--model", "name", default=None, help="Override [model] name.")
@click.option("--base-url", default=None, help="Override [model] base_url.")
@click.option("--api-key-env", default=None, metavar="NAME",
              help="Override [model] api_key_env: the NAME of the variable holding the key.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-C", "--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), help="The project directory [default: .].")
def check_command(provider, name, base_url, api_key_env, as_json, project) -> None:
    """Send the configured model a one-token request: `OK model ...` or `ERROR model — fix`."""
    from clude.config import ConfigError, load_settings
    from clude.llm.base import ModelError
    from clude.doctor import ask_model

    overrides = {"model": {"provider": provider, "name": name, "base_url": base_url,
                           "api_key_env": api_key_env}}
    try:
        settings, _ = load_settings(project, overrides)
    except ConfigError as exc:
        click.echo(f"clude: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:  # one quick question: no retries, a handful of tokens
        answer = ask_model(settings.model, project, prices=settings.prices)
    except ModelError as exc:
        _report(False, f"ERROR model — {exc}", as_json, {"error": str(exc)})
        sys.exit(EXIT_ERROR)
    _report(True, f"OK model — {answer}", as_json, {"where": answer.where, "seconds": round(answer.seconds, 3),
                                                    "usage": answer.usage.model_dump(),
                                                    "template": answer.template or None})
    sys.exit(EXIT_OK)


def _report(ok: bool, line: str, as_json: bool, data: dict) -> None:
    click.echo(json.dumps({"ok": ok, **data}) if as_json else line)
