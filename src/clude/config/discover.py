"""What `clude init` finds on this machine: local model servers (loopback only, every address and path
asked at once, each with a short timeout), API key variables (by name: a value is only tested for being
set, never read further), agent CLIs on PATH, and the project's test command. The table of what to look
for is data/discover.toml; proposal.py decides what it all means."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from clude.config.proposal import (BACKENDS, Answer, FoundCli, FoundKey, FoundServer, FoundTests, Table,
                                   found_server, listed_models, table_of)

_DATA = Path(__file__).parent / "data" / "discover.toml"
BODY_LIMIT = 1 << 20  # bytes of an answer read
URL_TIMEOUT_S = 3.0  # asking a --model-url for its models: it may be across the network
BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


@lru_cache(maxsize=1)
def load_table() -> Table:
    return table_of(tomllib.loads(_DATA.read_text(encoding="utf-8")))


def default_addresses(table: Table) -> list[tuple[str, int]]:
    """Each server kind's usual port on the table's loopback host."""
    return list(dict.fromkeys((table.host, kind.port) for kind in table.servers if kind.port))


def probe_servers(addresses: list[tuple[str, int]], table: Table,
                  timeout_s: float | None = None) -> list[FoundServer]:
    """The model servers answering at `addresses`, in their order: every path of every address asked
    at once, so the whole look takes about one timeout."""
    timeout = table.timeout_s if timeout_s is None else timeout_s
    paths = table.paths()
    jobs = [(host, port, path) for host, port in addresses for path in paths]
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(jobs)), thread_name_prefix="clude-init-probe") as pool:
        answers = list(pool.map(lambda job: fetch(_url(job[0], job[1], job[2]), timeout), jobs))
    by_address: dict[tuple[str, int], dict[str, Answer]] = {}
    for (host, port, path), answer in zip(jobs, answers):
        by_address.setdefault((host, port), {})[path] = answer
    found = [found_server(host, port, by_address[(host, port)], table) for host, port in addresses]
    return [server for server in found if server is not None]


def models_at(base_url: str, timeout_s: float = URL_TIMEOUT_S) -> list[str] | None:
    """The models a server at `base_url` lists at /models (no key is sent), or None when it does not say."""
    table = load_table()
    return listed_models(table.fallback, fetch(base_url.rstrip("/") + "/models", timeout_s))


def fetch(url: str, timeout_s: float) -> Answer:
    """(status, JSON body or None) of a GET, never through a proxy; (0, None) when nothing answers."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(request, timeout=timeout_s) as response:
            status, body = response.status, response.read(BODY_LIMIT)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(BODY_LIMIT)
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return status, None


def _url(host: str, port: int, path: str) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def found_keys(env: Mapping[str, str], table: Table) -> list[FoundKey]:
    """The key variables of the table that are set (non-blank), in the table's order. Only names
    leave this function."""
    out = []
    for kind in table.keys:
        if (env.get(kind.env) or "").strip():
            base_env = BASE_URL_ENV.get(kind.provider)
            out.append(FoundKey(kind, base_env if base_env and (env.get(base_env) or "").strip() else None))
    return out


def found_clis(env: Mapping[str, str]) -> list[FoundCli]:
    """The agent CLIs of data/backends.toml (clude's own agent aside): on PATH or not, and whether
    what they need to log in (a variable, or their own login file) is there."""
    from clude.team.backends import get_backend
    from clude.team.backends.agent_files import found_credentials

    out = []
    for name in BACKENDS:
        if name == "clude":
            continue
        backend = get_backend(name)
        spec = backend.spec
        program = spec.command[0]
        path = shutil.which(program, path=env.get("PATH", os.defpath))
        alternatives = [[n.strip() for n in req.split("|") if n.strip()] for req in spec.required_env]
        set_names = [n for names in alternatives for n in names if (env.get(n) or "").strip()]
        login = found_credentials(spec.credentials, env)
        missing = [names for names in alternatives if not any((env.get(n) or "").strip() for n in names)]
        ready = not missing or login is not None
        if path is None:
            note = f"not on PATH ({spec.install})" if spec.install else "not on PATH"
        elif set_names or login:
            note = ", ".join([f"${n} set" for n in set_names] + ([f"logged in ({login})"] if login else []))
        elif missing:
            needs = " or ".join(f"${n}" for n in missing[0])
            note = f"needs {needs}" + (" or its own login" if spec.credentials else "")
        else:
            note = "needs no key"
        out.append(FoundCli(name, program, path, ready, note))
    return out


def found_tests(root: Path, env: Mapping[str, str]) -> FoundTests:
    """The test command detection finds (no [test] command: the file is being written), and why."""
    import shlex

    from clude.config.settings import TestConfig
    from clude.harness.runner import choose, evidence

    config = TestConfig()
    chosen = choose(root, config, None, dict(env))
    if isinstance(chosen, str):
        return FoundTests(None, reasons=(chosen,))
    adapter, argv = chosen
    return FoundTests(shlex.join(argv), adapter.name, tuple(evidence(root, config, None, adapter, dict(env)))
                      or ("detected",))
