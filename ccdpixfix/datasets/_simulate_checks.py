"""Argument checks of the simulated camera in `ccdpixfix.datasets`."""

import numpy as np


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _validate_shape(shape) -> tuple[int, int]:
    values = tuple(np.atleast_1d(shape).tolist()) if np.ndim(shape) == 1 else ()
    _require(
        len(values) == 2 and all(isinstance(v, int) and v >= 8 for v in values),
        f"shape must be a 2-D (ny, nx) tuple of integers >= 8, got {shape!r}",
    )
    return values


def _validate_seed(seed) -> int:
    valid = isinstance(seed, int | np.integer) and not isinstance(seed, bool)
    _require(valid and seed >= 0, f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _validate_exptime(exptime: float) -> float:
    _require(
        np.isfinite(exptime) and exptime >= 0,
        f"exptime must be a non-negative number of seconds, got {exptime}",
    )
    return float(exptime)


def _count(name: str, value: int | None, default: int) -> int:
    value = default if value is None else value
    valid = isinstance(value, int | np.integer) and value >= 0
    _require(valid, f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
