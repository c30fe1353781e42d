"""The arrival watcher (issue 15 item 5) on the real Dovecot and aiosmtpd fixtures, and the heartbeat fix.

End to end: a watcher runs (in a thread, or as `gec watch` in a subprocess), a school's mail with a
workbook is APPENDed to Dovecot, and the reply must reach the SMTP sink with no scheduled run (the test
Prefect API has no scheduler). The watcher must survive a Dovecot restart, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import get_settings
from schemas.reference import load_reference
from tasks.intake.mailbox import PROCESSED_FOLDER, MailboxUnavailable
from tasks.intake.watch import Backoff, FolderWatcher, MailboxWatcher, arrived, folder_snapshot
from tests.mail.test_mail_intake import ARRIVED, OPS, outlook, replies_to, workbook
from tests.support.mailservers import DovecotServer, SmtpServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPLY_TIMEOUT = 120  # generous: a loaded two-core machine; the latency itself is bench/latency.py's


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------
# Plain logic


def test_backoff_doubles_up_to_the_ceiling_and_starts_again_after_a_success() -> None:
    backoff = Backoff(first=1, ceiling=10)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1
    with pytest.raises(ValueError):
        Backoff(first=0)


def test_folder_watcher_reports_a_new_file_once_and_ignores_removals(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.xlsx").write_bytes(b"old")
    watcher = FolderWatcher(inbox, interval=0.05)
    assert watcher.wait(0) == []  # the first look is the baseline
    (inbox / "MN001.xlsx").write_bytes(b"workbook")
    (inbox / "~$MN001.xlsx").write_bytes(b"excel lock file")  # never collected, so never an arrival
    assert watcher.wait(5) == ["MN001.xlsx"]
    assert watcher.wait(0.2) == []  # reported once
    (inbox / "old.xlsx").unlink()  # archived by a collect run
    assert watcher.wait(0.2) == []
    (inbox / "MN001.xlsx").write_bytes(b"a corrected, longer workbook")
    assert watcher.wait(5) == ["MN001.xlsx"]


def test_arrivals_are_new_or_changed_files() -> None:
    before = {"a.xlsx": (10, 1), "b.xlsx": (10, 1)}
    now = {"a.xlsx": (10, 1), "b.xlsx": (12, 2), "c.xlsx": (5, 3)}
    assert arrived(before, now) == ["b.xlsx", "c.xlsx"]
    assert folder_snapshot(Path("/nonexistent/gec-inbox")) == {}


# --------------------------------------------------------------------------------------------------
# IMAP IDLE against Dovecot


def stop_cutting_sessions(server: DovecotServer) -> None:
    """Stop Dovecot and end its IMAP sessions, as a real restart does (shutdown_clients).

    The fixture stops only the master process: its imap processes would go on serving open
    connections, and a watcher would never see the outage. They are our test's children; killed by id.
    """
    import psutil

    master = server._process
    sessions = []
    if master is not None:
        sessions = [child for child in psutil.Process(master.pid).children(recursive=True)
                    if child.cmdline()[:1] == ["dovecot/imap"]]
    server.stop()
    for session in sessions:
        with contextlib.suppress(psutil.NoSuchProcess):
            session.kill()
    psutil.wait_procs(sessions, timeout=10)


def _append_later(server: DovecotServer, raw: bytes, delay: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), server.append(raw)), daemon=True)
    thread.start()
    return thread


def test_idle_wakes_up_when_mail_lands_and_not_otherwise(imap_mailbox: DovecotServer) -> None:
    raw = outlook("mn001@truong.q8.test", "MN001", "BC", [])
    with MailboxWatcher(imap_mailbox.imap_config()) as watcher:
        assert watcher.wait(0) is False  # the first look only sets the mark
        assert watcher.wait(0.5) is False  # nothing landed
        appender = _append_later(imap_mailbox, raw, 0.5)
        assert watcher.wait(30) is True
        appender.join()
        assert watcher.wait(0.5) is False  # reported once
        stop = threading.Event()
        stop.set()
        assert watcher.wait(30, stop) is False  # a stop ends the wait


def test_mail_that_lands_during_an_outage_is_reported_after_reconnecting(imap_mailbox: DovecotServer) -> None:
    with MailboxWatcher(imap_mailbox.imap_config(timeout=5)) as watcher:
        watcher.wait(0)
        stop_cutting_sessions(imap_mailbox)
        try:
            with pytest.raises(MailboxUnavailable):  # the open connection is gone
                watcher.wait(1)
            with pytest.raises(MailboxUnavailable):  # still down: every wait says so, none hangs
                watcher.wait(1)
        finally:
            imap_mailbox.start()
        imap_mailbox.append(outlook("mn001@truong.q8.test", "MN001", "BC", []))
        assert watcher.wait(5) is True


# --------------------------------------------------------------------------------------------------
# The watcher end to end: mail lands → collect run → reply at the SMTP server


@pytest.fixture
def prefect_api(prefect_harness: str) -> str:
    """The session's throwaway Prefect API (tests/support/prefect_harness.py); its URL for subprocesses."""
    return prefect_harness


@pytest.fixture
def app_env(configured_database: str, imap_mailbox: DovecotServer, smtp_server: SmtpServer, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the app's settings at the test servers, a SQLite database and a fresh drop folder."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {**imap_mailbox.env, **smtp_server.env, "GEC_DATABASE_URL": configured_database,
           "GEC_INBOX_DIR": str(inbox), "GEC_ARCHIVE_DIR": str(tmp_path / "archive"), "GEC_OPS_EMAIL": OPS}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


@pytest.fixture
def running_watcher() -> Iterator[Callable[..., object]]:
    """Start a Watcher in a thread; stop and join it after the test."""
    from flows.watch import Watcher

    started: list[tuple[Watcher, threading.Thread, list[object]]] = []

    def start(**options: object) -> Watcher:
        watcher = Watcher(**options)  # type: ignore[arg-type]
        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(watcher.run()), daemon=True)
        thread.start()
        started.append((watcher, thread, result))
        wait_until(watcher.ready.is_set, 30, "the watcher's first look")
        return watcher

    yield start  # type: ignore[misc]
    for watcher, thread, _ in started:
        watcher.stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the watcher did not stop"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mail_landing_gets_its_reply_without_a_scheduled_run(
    prefect_api: str, app_env: dict[str, str], imap_mailbox: DovecotServer, smtp_server: SmtpServer,
    running_watcher: Callable[..., object],
) -> None:
    real = load_reference(get_settings().reference_dir)
    watcher = running_watcher(source="mailbox", quiet_seconds=3.0, catch_up=False)
    senders = [real.schools[code].emails[0] for code in ("MN001", "MN002", "TH001")]
    # Three schools' mails land together: one collect run answers all three.
    for sender, code in zip(senders, ("MN001", "MN002", "TH001"), strict=True):
        attachment = (f"Báo cáo {code}.xlsx", workbook(real, code))
        imap_mailbox.append(outlook(sender, code, "Báo cáo", [attachment]), internaldate=ARRIVED)

    wait_until(lambda: len(smtp_server.messages) >= 3, REPLY_TIMEOUT, "three replies at the SMTP server")

    assert sorted(replies_to(smtp_server)) == sorted(senders)
    for captured in smtp_server.messages:
        assert "Đã ghi nhận" in captured.message["Subject"]  # accepted, in Vietnamese
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 3
    wait_until(lambda: watcher.stats.runs >= 1, 60, "the collect run to return")  # type: ignore[attr-defined]
    assert watcher.stats.runs_by_source == {"mailbox": 1}  # type: ignore[attr-defined]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_watcher_survives_a_dovecot_restart(
    prefect_api: str, app_env: dict[str, str], imap_mailbox: DovecotServer, smtp_server: SmtpServer,
    running_watcher: Callable[..., object],
) -> None:
    from flows.watch import Watcher

    real = load_reference(get_settings().reference_dir)
    watcher = running_watcher(source="mailbox", quiet_seconds=1.0, catch_up=False,
                              backoff=Backoff(first=0.5, ceiling=2))
    assert isinstance(watcher, Watcher)
    stop_cutting_sessions(imap_mailbox)  # a restart: the watcher's IDLE connection is cut
    imap_mailbox.start()
    wait_until(lambda: watcher.stats.mailbox_outages >= 1, 30, "the watcher to notice the outage")
    sender = real.schools["MN003"].emails[0]
    imap_mailbox.append(outlook(sender, "MN003", "Báo cáo", [("MN003.xlsx", workbook(real, "MN003"))]),
                        internaldate=ARRIVED)

    wait_until(lambda: len(smtp_server.messages) >= 1, REPLY_TIMEOUT, "the reply after the restart")
    assert list(replies_to(smtp_server)) == [sender]
    wait_until(lambda: watcher.stats.runs >= 1, 60, "the collect run to return")
    assert watcher.stats.runs == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_deployment_flow_answers_mail_with_a_collect_subflow(
    prefect_api: str, app_env: dict[str, str], imap_mailbox: DovecotServer, smtp_server: SmtpServer,
) -> None:
    from prefect import get_client

    from flows.watch import watch_submissions

    real = load_reference(get_settings().reference_dir)
    sender = real.schools["MN005"].emails[0]
    raw = outlook(sender, "MN005", "Báo cáo", [("MN005.xlsx", workbook(real, "MN005"))])
    appender = _append_later(imap_mailbox, raw, 3)  # lands while the flow watches (or catches up)

    result = watch_submissions(source="mailbox", quiet_seconds=0.5, run_seconds=45)

    appender.join()
    assert list(replies_to(smtp_server)) == [sender]
    assert result["runs"] >= 1 and result["failed_runs"] == 0

    async def subflow_names() -> list[str]:
        async with get_client() as client:
            return [run.name for run in await client.read_flow_runs() if run.parent_task_run_id]

    assert any(name.startswith("collect-mailbox-") for name in asyncio.run(subflow_names()))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_watch_collects_a_dropped_file_and_stops_cleanly_on_sigterm(
    prefect_api: str, app_env: dict[str, str], tmp_path: Path,
) -> None:
    real = load_reference(get_settings().reference_dir)
    inbox = Path(app_env["GEC_INBOX_DIR"])
    env = {**os.environ, **app_env, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = tmp_path / "watch.log"
    gec = str(Path(sys.executable).parent / "gec")
    with log.open("wb") as out:
        process = subprocess.Popen([gec, "watch", "--source", "folder", "--quiet", "0.5"], cwd=PROJECT_ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: "collect folder done" in log.read_text(errors="replace"), 180,
                   "the start-up catch-up run")
        (inbox / "MN004.xlsx").write_bytes(workbook(real, "MN004"))
        archive = Path(app_env["GEC_ARCHIVE_DIR"])
        wait_until(lambda: not (inbox / "MN004.xlsx").exists(), REPLY_TIMEOUT, "the file to be collected")
        archived = [path.name for path in archive.rglob("*.xlsx")]
        assert len(archived) == 1 and archived[0].endswith("MN004.xlsx")  # archived as <id>-<name>
        wait_until(lambda: log.read_text(errors="replace").count("collect folder done") == 2, 60,
                   "the run to end")
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text(errors="replace")
    assert code == 0, output
    assert "Stopped: 2 collect run(s), 0 failed" in output
    assert "Traceback" not in output


# --------------------------------------------------------------------------------------------------
# The heartbeat fix (flows.prefect_patches)


class _FakeEngine:
    """Just what the heartbeat context reads from Prefect's flow-run engine."""

    heartbeat_seconds = 30

    def __init__(self) -> None:
        import logging

        self.flow_run = None
        self.logger = logging.getLogger("test.heartbeat")
        self.beats = 0

    def _build_heartbeat_event_template(self) -> tuple[dict[str, str], list[object]]:
        return {}, []

    def _emit_flow_run_heartbeat(self, _resource: object, _related: object) -> None:
        self.beats += 1


def test_heartbeat_fix_still_beats_and_stops_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import flow_engine

    from flows import prefect_patches

    assert prefect_patches.applied(), "importing flows installs the fix on Prefect 3.9.1"
    sleeps: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(flow_engine.time, "sleep",
                        lambda seconds: (sleeps.append(seconds), real_sleep(seconds)))

    def beats_with(context: Callable[..., object]) -> int:
        engine = _FakeEngine()
        with context(engine):  # type: ignore[operator]
            wait_until(lambda: engine.beats >= 1, 10, "the first heartbeat")
        return engine.beats

    assert beats_with(flow_engine._send_heartbeats) == 1
    assert sleeps == []  # the thread waited on its stop event: nothing for the run's end to wait out
    assert beats_with(prefect_patches.ORIGINAL_SEND_HEARTBEATS) == 1
    assert sleeps, "Prefect's own loop sleeps in steps (what the fix removes)"


def test_heartbeat_fix_is_not_applied_to_an_unchecked_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect
    from prefect import flow_engine

    from flows import prefect_patches

    monkeypatch.setattr(flow_engine, "_send_heartbeats", prefect_patches.ORIGINAL_SEND_HEARTBEATS)
    monkeypatch.setattr(prefect, "__version__", "3.10.0")
    assert prefect_patches.apply() is False
    assert not prefect_patches.applied()
    monkeypatch.setattr(prefect, "__version__", "3.9.1")
    monkeypatch.setenv("GEC_PREFECT_PATCHES", "0")
    assert prefect_patches.apply() is False
