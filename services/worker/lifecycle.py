"""What a worker's handlers hear of its life: that it is stopping, before Faust waits for them."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import faust

_ON_STOP: weakref.WeakKeyDictionary[faust.App, list[Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)


def on_stop(app: faust.App, callback: Callable[[], None]) -> None:
    """Call ``callback`` as soon as the worker running ``app`` starts stopping (SIGTERM), before
    Faust waits for the batches in hand: a handler told to stop gives its batch up."""
    _ON_STOP.setdefault(app, []).append(callback)


def stopping(app: faust.App) -> None:
    """Run the ``on_stop`` callbacks of ``app`` (the worker does, first thing when it stops)."""
    for callback in _ON_STOP.get(app, []):
        callback()
