"""Checks on the Python API's arguments, so a wrong call fails at once with a TypeError or
ValueError that names the argument, what it takes and what it got (not an AttributeError from
deep inside the compiler). Spec-level mistakes stay ArchErrors."""

from __future__ import annotations

import os
from collections.abc import Mapping


def spec_path(value) -> str:
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return os.fspath(value)
    raise TypeError(f"spec_path is the path of a .arch file (str or pathlib.Path), got {_got(value)}")


def variant(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"variant is a variant name (str) or None, got {_got(value)}")


def overrides(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"overrides is a dict of param names to values, e.g. {{'num_classes': 10}}, "
                        f"got {_got(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"overrides keys are param names (str), got {_got(key)}")
    return dict(value)


def input_size(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"input_size is a tuple of ints like (3, 224, 224), got {_got(value)}")
    if not value or not all(type(v) is int for v in value):
        raise TypeError(f"input_size is a tuple of ints like (3, 224, 224), got {value!r}")
    if any(v < 1 for v in value):
        raise ValueError(f"input_size holds positive sizes, got {tuple(value)}")
    return tuple(value)


def flag(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"{name} is True or False, got {_got(value)}")


def model(value, what: str):
    import torch

    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{what}() takes a model made by archlang.build(), got {_got(value)}")
    return value


def _got(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
