"""Print the fixed cost of a flow run: an empty collect and an empty @flow, with Prefect's own heartbeat
context and with flows.prefect_patches' fix (figures, not asserts).

Run: .venv/bin/python bench/run_overhead.py [--runs 5]

Uses a throwaway SQLite database and an empty drop folder, in its own Prefect home (ephemeral API).
Heartbeats stay on (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, default 180 s) in both cases; the fix only
changes how fast the heartbeat thread stops when a run ends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_HOME", str(ROOT / "data" / "prefect-bench"))
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def timed(function, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Return the seconds of `runs` calls of `function`."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gec-overhead-") as work:
        inbox = Path(work) / "inbox"
        inbox.mkdir()
        os.environ["GEC_DATABASE_URL"] = f"sqlite:///{Path(work) / 'gec.sqlite3'}"
        os.environ["GEC_INBOX_DIR"] = str(inbox)
        os.environ["GEC_ARCHIVE_DIR"] = str(Path(work) / "archive")

        from prefect import flow, settings

        from flows import prefect_patches
        from flows.collect import collect_submissions

        @flow(name="empty")
        def empty() -> None:
            """Do nothing: the flow run's own cost."""

        print(f"Prefect {__import__('prefect').__version__}; heartbeat every "
              f"{settings.get_current_settings().flows.heartbeat_frequency} s; "
              f"fix applicable: {prefect_patches.apply()}")
        collect_submissions(source="folder")  # warm-up: API start, migrations, registry
        results = {}
        for label, install in (("Prefect's heartbeat (sleep in 1 s steps)", prefect_patches.remove),
                               ("with flows.prefect_patches (Event.wait)", prefect_patches.apply)):
            install()
            results[label] = (timed(empty, args.runs),
                              timed(lambda: collect_submissions(source="folder"), args.runs))
        for label, (flows_, collects) in results.items():
            print(f"{label}:\n  empty @flow      median {statistics.median(flows_):.2f} s  "
                  f"(min {min(flows_):.2f}, max {max(flows_):.2f})\n"
                  f"  empty collect    median {statistics.median(collects):.2f} s  "
                  f"(min {min(collects):.2f}, max {max(collects):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
