"""The typed settings of clude.toml. Every section forbids unknown keys."""

from __future__ import annotations

import shlex
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FrameworkName = Literal["pytest", "unittest", "node", "go", "cargo", "jest", "vitest", "generic"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class TestConfig(Section):
    """[test]: how `clude test` (and every agent's verification) runs the project's tests."""

    __test__ = False  # not a pytest test class

    command: list[str] | str | None = Field(
        default=None, description="the test command, as a list or a shell-like string")
    framework: FrameworkName | None = Field(
        default=None, description="how to read its results, when clude cannot tell from the command")
    timeout: float = Field(default=900.0, gt=0, description="seconds before the run is killed")
    junit: str | None = Field(
        default=None, description="a JUnit XML file the command writes, for frameworks clude "
                                  "cannot instrument (path relative to the project)")
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables for the test command")

    def argv(self) -> list[str] | None:
        if self.command is None:
            return None
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


class Settings(Section):
    test: TestConfig = Field(default_factory=TestConfig)
