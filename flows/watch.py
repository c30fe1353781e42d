"""Watch the mailbox and the drop folder; start a collect run as soon as something lands (issue 15).

A school's reply should reach it within a minute of its mail landing, not at the next scheduled
collect. Two threads notice arrivals (`tasks.intake.watch`: IMAP IDLE with reconnect backoff, and
drop-folder polling); the main thread waits for them, lets a burst settle (several mails landing
together make one run) and calls `flows.collect.collect_submissions` for the sources that changed.
The scheduled collects stay as the safety net (a watcher that is down loses nothing: mail and files
wait for the next run).

Runs as the `watch-mailbox` deployment (a long-running flow; every collect is a subflow run) or as
`gec watch` (cli/watch.py), e.g. under systemd. Under `gec watch`, SIGTERM or SIGINT stops it cleanly
(exit 0); as a deployment, Prefect's own cancellation handles the signal.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from prefect import flow, get_run_logger

from config.settings import get_settings
from tasks.intake.mailbox import ImapConfig, MailboxUnavailable
from tasks.intake.watch import IDLE_MAX_SECONDS, STOP_CHECK_SECONDS, Backoff, FolderWatcher, MailboxWatcher

WATCHED = {"all": ("mailbox", "folder"), "mailbox": ("mailbox",), "folder": ("folder",)}
# Debounce: after the first arrival wait until nothing new came for QUIET seconds, at most MAX_DELAY.
QUIET_SECONDS = 2.0
MAX_DELAY_SECONDS = 10.0
FOLDER_POLL_SECONDS = 2.0

Collect = Callable[[str], Any]


def default_collect(inbox_dir: str | None = None) -> Collect:
    """Return a collect that runs `flows.collect.collect_submissions` for one source."""
    def collect(source: str) -> Any:
        from flows.collect import collect_submissions

        return collect_submissions(source=source, inbox_dir=inbox_dir)  # type: ignore[arg-type]
    return collect


@dataclass
class WatchStats:
    """What a watcher did, returned when it stops."""

    runs: int = 0
    failed_runs: int = 0
    mailbox_outages: int = 0
    runs_by_source: dict[str, int] = field(default_factory=dict)


class Watcher:
    """Arrival threads plus a debounced collect loop; `stop` ends everything."""

    def __init__(
        self,
        source: str = "all",
        *,
        inbox_dir: Path | None = None,
        imap: ImapConfig | None = None,
        collect: Collect | None = None,
        quiet_seconds: float = QUIET_SECONDS,
        max_delay_seconds: float = MAX_DELAY_SECONDS,
        folder_poll_seconds: float = FOLDER_POLL_SECONDS,
        backoff: Backoff | None = None,
        catch_up: bool = True,
        run_seconds: float | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        if source not in WATCHED:
            raise ValueError(f"source {source!r} is unknown: use folder, mailbox or all")
        settings = get_settings()
        self.sources = WATCHED[source]
        self.inbox_dir = Path(inbox_dir) if inbox_dir else settings.inbox_dir
        self.imap = imap
        self.collect = collect or default_collect(str(inbox_dir) if inbox_dir else None)
        self.quiet = quiet_seconds
        self.max_delay = max_delay_seconds
        self.folder_poll = folder_poll_seconds
        self.backoff = backoff or Backoff()
        self.catch_up = catch_up
        self.run_seconds = run_seconds
        self.log = logger or logging.getLogger("gec.watch")
        self.stop = threading.Event()
        self.stats = WatchStats()
        self.ready = threading.Event()  # set once every watcher has taken its first look
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._arrival = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready_count = 0

    # -- arrivals -------------------------------------------------------------------------------

    def notify(self, source: str) -> None:
        """Record that `source` has something new (called by the watcher threads)."""
        with self._lock:
            self._pending.add(source)
        self._arrival.set()

    def _took_first_look(self) -> None:
        with self._lock:
            self._ready_count += 1
            if self._ready_count >= len(self.sources):
                self.ready.set()

    def _watch_mailbox(self) -> None:
        watcher = MailboxWatcher(self.imap or ImapConfig.from_settings())
        backoff = Backoff(self.backoff.first, self.backoff.ceiling)
        first = True
        down_since: float | None = None
        try:
            while not self.stop.is_set():
                try:
                    if first:
                        watcher.wait(0)  # the first look only notes where the folder stands
                        first = False
                        self._took_first_look()
                        continue
                    if watcher.wait(IDLE_MAX_SECONDS, self.stop):
                        self.notify("mailbox")
                    if down_since is not None:
                        self.log.info("watch: mailbox reachable again after %.0f s",
                                      time.monotonic() - down_since)
                        down_since = None
                    backoff.reset()
                except MailboxUnavailable as error:
                    delay = backoff.next_delay()
                    if down_since is None:
                        down_since = time.monotonic()
                        self.stats.mailbox_outages += 1
                        self.log.warning("watch: %s; retrying in %.0f s (backoff up to %.0f s)",
                                         error, delay, backoff.ceiling)
                    self.stop.wait(delay)
        finally:
            watcher.close()

    def _watch_folder(self) -> None:
        watcher = FolderWatcher(self.inbox_dir, self.folder_poll)
        watcher.wait(0)  # baseline
        self._took_first_look()
        while not self.stop.is_set():
            if watcher.wait(60, self.stop):
                self.notify("folder")

    # -- the loop -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the arrival threads (daemons: they never keep the process alive)."""
        targets = {"mailbox": self._watch_mailbox, "folder": self._watch_folder}
        for source in self.sources:
            thread = threading.Thread(target=targets[source], name=f"gec-watch-{source}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self) -> WatchStats:
        """Watch until `stop` is set; return what was done."""
        self.log.info("watch: watching %s (debounce %.1f s, at most %.1f s)",
                      " and ".join(self.sources), self.quiet, self.max_delay)
        self.start()
        if self.run_seconds:
            limit = threading.Timer(self.run_seconds, self.stop.set)
            limit.daemon = True
            limit.start()
        try:
            # Take the first looks before the catch-up run, so nothing lands unseen in between.
            deadline = time.monotonic() + 30
            while not self.ready.wait(STOP_CHECK_SECONDS) and not self.stop.is_set():
                if time.monotonic() > deadline:
                    break  # a source is down; its watcher keeps retrying
            if self.catch_up and not self.stop.is_set():
                # What landed while no watcher ran (the scheduled collect would take it otherwise).
                self._run_collect(set(self.sources))
            while not self.stop.is_set():
                if not self._arrival.wait(STOP_CHECK_SECONDS):
                    continue
                self._settle()
                with self._lock:
                    sources, self._pending = set(self._pending), set()
                if sources and not self.stop.is_set():
                    self._run_collect(sources)
        finally:
            self.stop.set()
            for thread in self._threads:
                thread.join(timeout=10)
        self.log.info("watch: stopped after %d collect run(s)", self.stats.runs)
        return self.stats

    def _settle(self) -> None:
        """Wait until arrivals pause for `quiet` seconds (at most `max_delay` after the first)."""
        limit = time.monotonic() + self.max_delay
        while not self.stop.is_set():
            self._arrival.clear()
            wait = min(self.quiet, limit - time.monotonic())
            if wait <= 0 or not self._arrival.wait(wait):
                return

    def _run_collect(self, sources: set[str]) -> None:
        source = "all" if len(sources) > 1 else next(iter(sources))
        started = time.monotonic()
        try:
            self.collect(source)
        except Exception as error:  # a failed run must not end the watcher; the schedule is the net
            self.stats.failed_runs += 1
            self.log.warning("watch: collect %s failed: %s; retrying after the next arrival or in %.0f s",
                             source, error, self.backoff.ceiling)
            # Retry later: the mail that caused it is still unseen and will not announce itself again.
            timer = threading.Timer(self.backoff.ceiling, lambda: [self.notify(s) for s in sources])
            timer.daemon = True
            timer.start()
            return
        self.stats.runs += 1
        self.stats.runs_by_source[source] = self.stats.runs_by_source.get(source, 0) + 1
        self.log.info("watch: collect %s done in %.1f s", source, time.monotonic() - started)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGTERM or SIGINT while inside the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_watch(source: str = "all", **options: Any) -> WatchStats:
    """Watch until SIGTERM/SIGINT (the entry of `gec watch`); exit cleanly either way.

    A signal between runs just stops the loop. During a collect run Prefect's own SIGTERM bridge is
    in charge (it re-installs itself for every flow run): that run ends Crashed, as it would under
    a worker, having lost at most its current batch (SPEC §4: raw bytes are committed first).
    """
    from prefect.exceptions import TerminationSignal

    watcher = Watcher(source, **options)
    with stop_on_signals(watcher.stop):
        try:
            return watcher.run()
        except (TerminationSignal, KeyboardInterrupt) as signal_:
            watcher.log.info("watch: stopped during a collect run (%s)", type(signal_).__name__)
            return watcher.stats


@flow(name="watch-mailbox", log_prints=False)
def watch_submissions(
    source: Literal["all", "mailbox", "folder"] = "all",
    quiet_seconds: float = QUIET_SECONDS,
    max_delay_seconds: float = MAX_DELAY_SECONDS,
    folder_poll_seconds: float = FOLDER_POLL_SECONDS,
    run_seconds: float | None = None,
) -> dict[str, Any]:
    """Start a collect run whenever mail or a file lands; runs until cancelled (or `run_seconds`)."""
    # No signal handler of ours here: Prefect's SIGTERM bridge stays in charge, so cancelling the
    # run from the UI (or stopping the worker) marks it Cancelled; the watcher threads stop in `run`.
    stats = Watcher(source, quiet_seconds=quiet_seconds, max_delay_seconds=max_delay_seconds,
                    folder_poll_seconds=folder_poll_seconds, run_seconds=run_seconds,
                    logger=get_run_logger()).run()
    return {"runs": stats.runs, "failed_runs": stats.failed_runs, "mailbox_outages": stats.mailbox_outages,
            "runs_by_source": stats.runs_by_source}
