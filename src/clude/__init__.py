"""clude: runs AI coding agents unattended, alone (`clude run`) or as a team on one repository (`clude team`).

Layers, imports pointing downwards only (docs/design.md): cli > team > agent > harness > llm > config.
"""

__version__ = "0.1.0"
