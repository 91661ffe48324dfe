"""make_model: the configured chat model, with message normalization, tool modes, retries and usage."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit


from clude.config.settings import ModelConfig
from clude.llm.base import ChatModel, ModelError
from clude.llm.provider_model import DEFAULT_BASE_URL, NO_KEY

KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def is_local(base_url: str) -> bool:
    """Whether a base_url points at this machine (where servers usually need no key)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".localhost")


def make_model(config: ModelConfig, *, env: Mapping[str, str] | None = None, prices: Mapping | None = None,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic, base_dir: Path | None = None) -> ChatModel:
    """The chat model `config` describes; the key is read from the variable config.api_key_env names.
    A `scripted` model's script path is relative to `base_dir` (the project)."""
    env = os.environ if env is None else env
    provider = config.provider
    if provider == "scripted":
        return scripted_from_file(config, base_dir or Path.cwd())
    if provider not in KEY_ENV:
        raise ModelError(f"unknown model provider {provider!r}: use one of {', '.join(sorted(KEY_ENV))}")
    base_url = (config.base_url or env.get(BASE_URL_ENV[provider]) or DEFAULT_BASE_URL[provider]).rstrip("/")
    where = f"{provider} model {config.name!r} at {base_url}"
    if not config.name.strip():
        raise ModelError(f"{provider} model at {base_url}: no model name: set name in [model]")
    key_env = config.api_key_env or KEY_ENV[provider]
    key = (env.get(key_env) or "").strip()
    if not key:
        if not is_local(base_url):
            raise ModelError(f"{where}: no API key: the environment variable {key_env} is not set or "
                             f"empty; export {key_env}=<your key>, or set api_key_env in [model] to "
                             "the name of the variable that holds it")
        key = NO_KEY
    if provider == "openai":
        from clude.llm.openai_chat import OpenAIChat as cls
    else:
        from clude.llm.anthropic_chat import AnthropicChat as cls
    return cls(config, api_key=key, key_env=key_env, base_url=base_url, prices=prices, sleep=sleep,
               clock=clock)


def scripted_from_file(config: ModelConfig, base_dir: Path) -> ChatModel:
    """The scripted model of [model] provider = "scripted": replies replayed from a JSON list."""
    from clude.llm.scripted import ScriptedModel

    if not config.script:
        raise ModelError("[model] provider \"scripted\" needs script = \"FILE.json\" (a JSON list of "
                         "replies)")
    path = (base_dir / config.script) if not Path(config.script).is_absolute() else Path(config.script)
    try:
        replies = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelError(f"[model] script {path}: cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise ModelError(f"[model] script {path}: not valid JSON ({error})") from None
    name = config.name or f"scripted:{path.name}"
    if isinstance(replies, dict) and isinstance(replies.get("rules"), list):
        return ScriptedModel(rules_script(replies, path), name=name)
    if not isinstance(replies, list):
        raise ModelError(f"[model] script {path}: must hold a JSON list of replies, or an object "
                         f"with \"rules\", not a {type(replies).__name__}")
    return ScriptedModel(replies, name=name)


def rules_script(data: dict, path: Path):
    """A script of rules {"rules": [{"when": TEXT, "replies": [...]}]}: a request goes to the first
    rule whose text is in its first user message, and takes that rule's next reply (in this process)."""
    rules = data["rules"]
    for n, rule in enumerate(rules):
        if not isinstance(rule, dict) or not isinstance(rule.get("when"), str) \
                or not isinstance(rule.get("replies"), list):
            raise ModelError(f"[model] script {path}: rules[{n}] needs \"when\" (a text) and "
                             f"\"replies\" (a list)")
    taken = [0] * len(rules)
    lock = threading.Lock()

    def reply(messages, tools):
        first = next((m.get("content") for m in messages if m.get("role") == "user"), "") or ""
        first = first if isinstance(first, str) else json.dumps(first)
        for n, rule in enumerate(rules):
            if rule["when"] in first:
                with lock:
                    if taken[n] >= len(rule["replies"]):
                        raise ModelError(f"[model] script {path}: rule {rule['when']!r} has no reply "
                                         f"left ({len(rule['replies'])} scripted)")
                    taken[n] += 1
                    return rule["replies"][taken[n] - 1]
        raise ModelError(f"[model] script {path}: no rule matches this request")

    return reply
