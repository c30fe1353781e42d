"""A small, version-guarded fix to Prefect, applied when `flows` is imported (docs/operations.md §11).

Prefect 3.9.1 keeps flow-run heartbeats (on by default, every 180 s: an automation marks a deployment
run Crashed when they stop) in a thread that sleeps in 1-second steps, and joins that thread when the
run ends. Every run, however short, so waits for the current step to finish: about one second each,
the largest part of an empty collect run and of the watcher's reply latency.

The fix keeps the heartbeats exactly as they are (same events, same interval, same settings) and only
makes the thread wait on its stop event, so the join returns at once. It replaces
`prefect.flow_engine._send_heartbeats` for the versions listed in PATCHED_VERSIONS only: another
Prefect version runs unpatched until someone checks that the code is still the same and adds it.
Set GEC_PREFECT_PATCHES=0 to run unpatched.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

import prefect
from prefect import flow_engine

PATCHED_VERSIONS = frozenset({"3.9.1"})
ORIGINAL_SEND_HEARTBEATS = flow_engine._send_heartbeats


@contextmanager
def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Generator[None, None, None]:
    """Emit the run's heartbeat events from a daemon thread that stops as soon as the run ends."""
    seconds = engine.heartbeat_seconds
    if seconds is None:  # heartbeats switched off (PREFECT_FLOWS_HEARTBEAT_FREQUENCY unset to none)
        yield
        return
    seconds = max(seconds, flow_engine.MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            run = engine.flow_run
            if run is not None and run.state is not None and run.state.is_final():
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:  # a lost heartbeat must never fail the run
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            stop.wait(seconds)  # the fix: wakes at once when the run ends

    # The thread must see the caller's settings context (API URL), as upstream does.
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(beat,), daemon=True, name="gec-flow-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if join_on_exit:
            thread.join(timeout=2)


send_heartbeats._gec_patch = True  # type: ignore[attr-defined]


def apply() -> bool:
    """Install the heartbeat fix when this Prefect version is one it was checked against."""
    if os.environ.get("GEC_PREFECT_PATCHES", "1").strip() == "0":
        return False
    if prefect.__version__ not in PATCHED_VERSIONS:
        return False
    flow_engine._send_heartbeats = send_heartbeats
    return True


def remove() -> None:
    """Put Prefect's own heartbeat context back (benchmarks compare both)."""
    flow_engine._send_heartbeats = ORIGINAL_SEND_HEARTBEATS


def applied() -> bool:
    """Return whether the heartbeat fix is in place."""
    return getattr(flow_engine._send_heartbeats, "_gec_patch", False)
