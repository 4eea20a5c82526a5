"""Lazy package exports: a stage's `__init__` names its public API without importing torch to do so.

    _LAZY = {"build_dataset": ".rendering", ...}
    __getattr__, __all__ = lazy_exports(__name__, _LAZY)

The first `selma.datasets.build_dataset` imports `.rendering` and caches the value on the package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module `__getattr__` resolving `table` (name -> relative module) on first use, and the `__all__` list."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__, list(table)
