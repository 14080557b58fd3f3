"""The one rule for numbers a user gives: scenario fields, parameter overrides, seeds.

YAML, Python and the command line all hand over values whose type is easy to
get wrong: ``16.0`` where a count is meant (numba then fails deep inside a
kernel), ``true`` where a seed is meant (it would run as seed 1), ``"2027"``
for a year. Rather than coerce them silently, every check of a number calls
:func:`number_problem`, and the scenario schema's :data:`Int`, :data:`Float`
and :data:`Seed` types are built on it, so the scenario file, ``params``
overrides, ``--seed`` and the Python API accept exactly the same values.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Annotated, Any

from pydantic import BeforeValidator, StrictBool

SEED_LIMIT = 2**64
"""Seeds are integers in [0, 2^64): numpy's SeedSequence takes any, but the outputs store them as unsigned 64-bit."""


def number_problem(value: Any, *, integer: bool) -> str | None:
    """What is wrong with ``value`` as a number (a whole one if ``integer``), or None when it is fine.

    Booleans are never numbers, a float is never a whole number (not even
    ``16.0``), text is never either, and a number must be finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"must be {'a whole number' if integer else 'a number'}, got {_kind(value)}"
    if integer and not isinstance(value, numbers.Integral):
        return f"must be a whole number written without a decimal point, got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    return None


def seed_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as a seed (a whole number in [0, 2^64)), or None."""
    problem = number_problem(value, integer=True)
    if problem is None and not 0 <= value < SEED_LIMIT:
        problem = f"must be a whole number from 0 to 2^64 - 1, got {value}"
    return problem


def _kind(value: Any) -> str:
    """A short account of a wrong value: its repr when short, else its type (a value can be huge)."""
    text = reprlib.repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def _checked(rule):
    """A pydantic before-validator raising the rule's complaint, so the schema speaks as the rule does."""

    def check(value: Any) -> Any:
        problem = rule(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return check


Int = Annotated[int, BeforeValidator(_checked(lambda v: number_problem(v, integer=True)))]
"""A whole number in a scenario: not 16.0, not true, not "2027"."""

Float = Annotated[float, BeforeValidator(_checked(lambda v: number_problem(v, integer=False)))]
"""A finite number in a scenario: not true, not "1e9" in quotes, not .nan."""

Seed = Annotated[int, BeforeValidator(_checked(seed_problem))]
"""A seed in a scenario: a whole number in [0, 2^64)."""

Bool = StrictBool
"""true or false in a scenario: not 1, not "yes"."""
