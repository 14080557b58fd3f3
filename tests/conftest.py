"""Shared fixtures: the shipped layer stack is loaded once per test session."""

from __future__ import annotations

import pytest

import layers


@pytest.fixture(scope="session")
def stack() -> layers.LayerStack:
    """The shipped layers at the default 250 m grid."""
    return layers.load()
