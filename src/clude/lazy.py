"""Package attributes imported on first use (PEP 562), to keep pydantic out of clude's quick paths."""

import importlib


def lazy_attributes(package: str, where: dict[str, str]):
    """A module `__getattr__` that imports `name` from `package.<where[name]>` when first asked."""

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
