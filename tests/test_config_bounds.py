"""Every number in clude.toml has a range: 1e308, inf and nan are refused by the loader with the file,
the key and the allowed range, instead of crashing later (a timedelta overflow, a sleep of forever)."""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import BaseModel

from clude.config import ConfigError, load_settings
from clude.config.settings import Settings


def refused(tmp_path, text: str) -> str:
    (tmp_path / ".git").mkdir(exist_ok=True)
    (tmp_path / "clude.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    return str(err.value)


@pytest.mark.parametrize("section, key, value, got, expected", [
    ("team", "lease_s", "1e308", "1e+308", "must be a number from 1 to 86400 ([team] lease_s, default 120)"),
    ("team", "poll_s", "1e308", "1e+308",
     "must be a number greater than 0 and at most 3600 ([team] poll_s, default 5)"),
    ("team", "heartbeat_s", "inf", "inf",
     "must be a number greater than 0 and at most 3600 ([team] heartbeat_s, default 5)"),
    ("team", "agent_timeout_s", "nan", "nan", "must be a number greater than 0 and at most 604800"),
    ("team", "restart_cap_s", "-inf", "-inf", "must be a number greater than 0 and at most 86400"),
    ("team", "agents", "inf", "inf", "must be an integer from 1 to 64 ([team] agents, default 3)"),
    ("team", "crash_loop", "1" + "0" * 80, "1000", "must be an integer from 1 to 100"),
    ("test", "timeout", "1e308", "1e+308",
     "must be a number greater than 0 and at most 86400 ([test] timeout, default 900)"),
    ("model", "timeout", "inf", "inf", "must be a number greater than 0 and at most 3600 ([model] timeout"),
    ("model", "temperature", "nan", "nan", "must be a number from 0 to 2 ([model] temperature)"),
    ("agent", "max_wall_s", "1e308", "1e+308", "must be a number greater than 0 and at most 604800"),
    ("agent", "output_budget", "10000000000", "10000000000", "must be an integer from 500 to 1000000"),
])
def test_a_number_out_of_range_names_file_key_and_range(tmp_path, section, key, value, got, expected):
    message = refused(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert message.startswith(f"{tmp_path / 'clude.toml'}: {section}.{key}: got {got}")
    assert expected in message
    assert len(message) < 300  # a huge integer is cut, not printed whole


def test_several_bad_numbers_are_reported_together_one_line_each(tmp_path):
    message = refused(tmp_path, "[team]\nlease_s = inf\npoll_s = nan\n[team.roles]\nimplementer = 1e12\n"
                                "[backends.mine]\ntimeout_s = 1e308\n[prices.\"my-*\"]\ninput = inf\noutput = 1\n")
    lines = message.splitlines()
    assert len(lines) == 5
    assert "team.lease_s: got inf; must be a number from 1 to 86400" in message
    assert "team.poll_s: got nan; must be a number greater than 0" in message
    assert "team.roles.implementer: got 1000000000000.0; must be an integer from 1 to 64 ([team.roles] implementer)" \
        in message
    assert "backends.mine.timeout_s: got 1e+308; must be a number greater than 0 and at most 604800 " \
           "([backends.mine] timeout_s)" in message
    assert "prices.my-*.input: got inf; must be a number from 0 to 10000" in message


def test_pyproject_names_its_table_in_the_key(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.clude.team]\nlease_s = inf\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert "pyproject.toml [tool.clude]: team.lease_s: got inf" in str(err.value)
    assert "([tool.clude.team] lease_s, default 120)" in str(err.value)


def test_values_within_range_are_read(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "clude.toml").write_text("[team]\nlease_s = 86400\npoll_s = 0.05\nagents = 64\n"
                                         "[team.roles]\ndocs = 2\n", encoding="utf-8")
    team = load_settings(tmp_path)[0].team
    assert (team.lease_s, team.poll_s, team.agents, team.roles) == (86400, 0.05, 64, {"docs": 2})


def _numbers(model: type[BaseModel], prefix: str = ""):
    for name, info in model.model_fields.items():
        annotation = info.annotation
        options = typing.get_args(annotation) if typing.get_origin(annotation) in (
            typing.Union, types.UnionType) else (annotation,)
        if typing.get_origin(annotation) is dict:
            value = typing.get_args(annotation)[1]
            if isinstance(value, type) and issubclass(value, BaseModel):
                yield from _numbers(value, f"{prefix}{name}.*.")
            elif typing.get_origin(value) is typing.Annotated:
                _, *extra = typing.get_args(value)
                yield f"{prefix}{name}.*", [m for e in extra for m in e.metadata]
            else:
                assert value not in (int, float), f"{prefix}{name}: a table of unbounded numbers"
            continue
        for option in options:
            if isinstance(option, type) and issubclass(option, BaseModel):
                yield from _numbers(option, f"{prefix}{name}.")
            elif option in (int, float):
                yield f"{prefix}{name}", list(info.metadata)


def test_every_number_setting_has_a_lower_and_an_upper_bound():
    found = dict(_numbers(Settings))
    assert "team.lease_s" in found and "team.roles.*" in found and "prices.*.input" in found
    for key, constraints in found.items():
        names = {n for c in constraints for n in ("ge", "gt", "le", "lt") if getattr(c, n, None) is not None}
        assert names & {"ge", "gt"} and names & {"le", "lt"}, f"{key} is not bounded on both sides"
