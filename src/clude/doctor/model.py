"""The model part of the pre-flight checks: `ask_model` (the one-token request of `clude models check`
and `clude doctor`) and `probe_model` (the model list only, before `clude run` and `clude team run`)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from clude.config.settings import ModelConfig

PROBE_TIMEOUT_S = 30.0  # the model server's model list
# [model] names no model: what doctor, `clude run` and `clude team run` (clude backend) say
NOT_CONFIGURED = ("no model is configured: set [model] in clude.toml (provider, name, base_url: docs/llm.md), "
                  "or run `clude init`, which finds a local model server or an API key and writes it")


def model_configured(config: ModelConfig) -> bool:
    """Whether [model] names a model (a scripted one names its script)."""
    return config.provider == "scripted" or bool(config.name.strip())


@dataclass
class ModelAnswer:
    """What a one-token request found: the model's place, the seconds it took, the usage."""

    where: str
    seconds: float
    usage: Any
    template: str = ""  # what fitting the server's chat template found, when it shows one

    def __str__(self) -> str:
        return (f"{self.where} answered in {self.seconds:.2f} s ({self.usage.input_tokens} tokens in, "
                f"{self.usage.output_tokens} out)" + (f"; {self.template}" if self.template else ""))


def ask_model(config: ModelConfig, root: Path | None = None, env: Mapping[str, str] | None = None, *,
              prices: Mapping | None = None) -> ModelAnswer:
    """`clude models check`: one short question, no retries. Raises ModelError saying what is wrong."""
    from clude.llm.providers import make_model

    config = config.model_copy(update={"max_retries": 0, "max_tokens": 8})
    start = time.monotonic()
    model = make_model(config, env=env, prices=prices, base_dir=root)
    reply = model.chat([{"role": "user", "content": "Reply with the single word OK."}])
    return ModelAnswer(getattr(model, "where", model.name), time.monotonic() - start, reply.usage,
                       getattr(model, "template_note", ""))


def probe_model(config: ModelConfig, root: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """The model server answers and takes the key: it is asked for its model list, which costs no
    tokens and no scripted reply (the check `clude run` and `clude team run` make before starting).
    Raises ModelError saying what is wrong."""
    import urllib.error
    import urllib.request

    from clude.llm.base import ModelError
    from clude.llm.providers import make_model

    env = os.environ if env is None else env
    model = make_model(config.model_copy(update={"max_retries": 0}), env=env, base_dir=root)
    base_url = getattr(model, "base_url", None)
    where = getattr(model, "where", model.name)
    if not base_url:
        return where
    key = (env.get(getattr(model, "key_env", "") or "") or "").strip()
    if config.provider == "anthropic":
        url = base_url + ("/models" if base_url.endswith("/v1") else "/v1/models")
        headers = {"anthropic-version": "2023-06-01", **({"x-api-key": key} if key else {})}
    else:
        url, headers = base_url + "/models", ({"Authorization": f"Bearer {key}"} if key else {})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=min(config.timeout, PROBE_TIMEOUT_S)) as response:
            status, body = response.status, response.read(1 << 20)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(1 << 20)
        headers_in = error.headers
    except (urllib.error.URLError, OSError, ValueError) as error:
        why = getattr(error, "reason", None) or error
        raise ModelError(f"{where}: the server does not answer ({model.scrub(why)}): start it, or fix "
                         "base_url in [model]") from None
    else:
        headers_in = {}
    seconds = time.monotonic() - start
    if status == 404:
        return f"{where} answers in {seconds:.2f} s (it lists no models)"
    if status in (401, 403):
        raise model.http_error(status, headers_in, _said(body))
    if status >= 400 and status != 429:
        raise ModelError(f"{where}: HTTP {status} from {url}: {model.scrub(_said(body))}")
    listed = _model_ids(body)
    note = "" if not listed or config.name in listed else \
        f"; {config.name!r} is not among the {len(listed)} models it lists"
    return f"{where} answers in {seconds:.2f} s{note}"


def _json(body: bytes):
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None


def _said(body: bytes) -> str:
    """The server's own words in an error body."""
    data = _json(body)
    inner = data.get("error") if isinstance(data, dict) else None
    inner = inner if isinstance(inner, dict) else data if isinstance(data, dict) else {}
    return str(inner.get("message") or body.decode("utf-8", "replace")[:200])


def _model_ids(body: bytes) -> list[str] | None:
    """The ids of the models a /models answer lists (OpenAI and Anthropic: {"data": [{"id"}]})."""
    data = _json(body)
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        return None
    return [str(m.get("id")) for m in listed if isinstance(m, dict)]
