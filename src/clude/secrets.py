"""Keeps secrets out of what clude prints and writes: the values of secret-named environment variables
and strings shaped like API keys are replaced before anything is shown, saved or cached."""

from __future__ import annotations

import os
import re
from pathlib import Path

# A variable whose name says it holds a secret.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|PRIVATE", re.IGNORECASE)
# Shapes of well-known API keys and tokens, redacted wherever they appear.
KEY_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}")
# user:password in a URL (https://bob:hunter2@host/repo.git): the password never shown
URL_CREDENTIALS = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
FILE_IN_MEMORY = 64 * 1024 * 1024  # bytes; a larger run file is redacted line by line
MIN_SECRET_LEN = 8  # shorter values ("1", "true") would redact ordinary words
_TOKEN = re.compile(r"[A-Za-z0-9_+/=-]{%d,}" % MIN_SECRET_LEN)


class Redactor:
    """Redacts the secrets of one environment from text and files."""

    def __init__(self, env: dict[str, str]):
        found = {value: name for name, value in env.items()
                 if SECRET_NAME.search(name) and _looks_secret(value)}
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted(found.items(), key=lambda item: -len(item[0]))

    def text(self, text: str) -> str:
        for value, name in self.secrets:
            if value in text:
                text = text.replace(value, f"[redacted ${name}]")
        if self.secrets:  # pieces too: pytest shows a long value as 'sk-proj-abcd...wx0123456789'
            text = _TOKEN.sub(self._piece, text)
        return URL_CREDENTIALS.sub("://[redacted]@", KEY_SHAPES.sub("[redacted]", text))

    def _piece(self, match: re.Match) -> str:
        token = match.group()
        return "[redacted]" if any(token in value for value, _ in self.secrets) else token

    def data(self, value):
        """The same JSON-like value with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v)
                    for k, v in value.items()}
        return value

    def file(self, path: Path) -> None:
        """Rewrite a file without its secrets (bytes that are not UTF-8 are kept as they were); a
        file with none is left alone. Files past FILE_IN_MEMORY are done line by line."""
        try:
            if path.stat().st_size > FILE_IN_MEMORY:
                return self._file_by_lines(path)
            raw = path.read_bytes()
        except OSError:
            return None
        text = raw.decode("utf-8", "surrogateescape")
        clean = self.text(text)
        if clean != text:
            path.write_bytes(clean.encode("utf-8", "surrogateescape"))
        return None

    def _file_by_lines(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".redacting")
        changed = False
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                for raw in src:
                    text = raw.decode("utf-8", "surrogateescape")
                    clean = self.text(text)
                    changed = changed or clean != text
                    dst.write(clean.encode("utf-8", "surrogateescape"))
            if changed:
                os.replace(tmp, path)
        except OSError:
            pass
        finally:
            tmp.unlink(missing_ok=True)


def _looks_secret(value: str) -> bool:
    """Long enough to be a secret, and not a path or a flag that the name merely sounds like."""
    return len(value) >= MIN_SECRET_LEN and not value.startswith(("/", "~", ".")) and \
        value.lower() not in ("true", "false", "enabled", "disabled")
