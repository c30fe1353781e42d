"""Print how long a school waits for its reply with the watcher running (figures, not asserts).

Run (as root, like the mail tests): .venv/bin/python bench/latency.py [--mails 20] [--interval 3]

Starts the real test servers (a private Dovecot, an aiosmtpd sink: tests/support/mailservers.py), a
throwaway SQLite database and Prefect's ephemeral API in its own home, and the watcher
(`flows.watch.Watcher`, mailbox only, default debounce) in a thread. One warm-up mail (the first run
pays the API start and the migrations; a deployment's API is already up) is reported apart. Then N
schools each APPEND one mail with their workbook, `--interval` seconds apart, and the script prints
p50/p95/max seconds from APPEND to the reply's arrival at the SMTP server, and how many collect runs
answered them. There is no scheduler: every reply comes from a run the watcher started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_HOME", str(ROOT / "data" / "prefect-bench"))
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=20)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between two APPENDs")
    parser.add_argument("--quiet", type=float, default=None, help="debounce seconds (default the watcher's)")
    args = parser.parse_args()

    from tests.support.mailservers import DovecotServer, SmtpServer, find_dovecot, free_port

    binary = find_dovecot()
    if binary is None or os.geteuid() != 0:
        print("needs Dovecot (scripts/install-system-deps.sh) and root, as the mail tests do",
              file=sys.stderr)
        return 2
    dovecot = DovecotServer.create(binary)
    smtp = SmtpServer(port=free_port())
    work = Path(tempfile.mkdtemp(prefix="gec-latency-"))
    dovecot.start()
    smtp.start()
    try:
        os.environ.update({**dovecot.env, **smtp.env,
                           "GEC_DATABASE_URL": f"sqlite:///{work / 'gec.sqlite3'}",
                           "GEC_INBOX_DIR": str(work / "inbox"), "GEC_ARCHIVE_DIR": str(work / "archive")})
        (work / "inbox").mkdir()
        return run(args, dovecot, smtp)
    finally:
        smtp.stop()
        dovecot.cleanup()


def run(args: argparse.Namespace, dovecot: object, smtp: object) -> int:
    from config.settings import get_settings
    from flows.watch import QUIET_SECONDS, Watcher
    from schemas.reference import load_reference
    from tests.mail.test_mail_intake import outlook, workbook

    reference = load_reference(get_settings().reference_dir)
    schools = [school for school in reference.schools.values() if school.emails][: args.mails + 1]
    if len(schools) < args.mails + 1:
        print(f"the registry has only {len(schools)} schools with an address", file=sys.stderr)
        return 2
    mails = [(school.emails[0], outlook(school.emails[0], school.code, "Báo cáo",
                                        [(f"Báo cáo {school.code}.xlsx", workbook(reference, school.code))]))
             for school in schools]

    arrived: dict[str, float] = {}

    def watch_smtp() -> None:  # the sink keeps no times: note when each reply shows up
        seen = 0
        while not done.is_set():
            while seen < len(smtp.messages):  # type: ignore[attr-defined]
                for address in smtp.messages[seen].rcpt_tos:  # type: ignore[attr-defined]
                    arrived.setdefault(address, time.monotonic())
                seen += 1
            time.sleep(0.02)

    done = threading.Event()
    quiet = QUIET_SECONDS if args.quiet is None else args.quiet
    watcher = Watcher("mailbox", quiet_seconds=quiet, catch_up=False)
    threads = [threading.Thread(target=watcher.run, daemon=True),
               threading.Thread(target=watch_smtp, daemon=True)]
    for thread in threads:
        thread.start()
    watcher.ready.wait(60)

    def deliver(address: str, raw: bytes) -> float:
        sent = time.monotonic()
        dovecot.append(raw)  # type: ignore[attr-defined]
        return sent

    def wait_for(addresses: list[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not all(address in arrived for address in addresses) and time.monotonic() < deadline:
            time.sleep(0.05)

    warm_address, warm_raw = mails[0]
    warm_sent = deliver(warm_address, warm_raw)
    wait_for([warm_address])
    runs_before = watcher.stats.runs
    print(f"warm-up mail (API start, migrations): {arrived[warm_address] - warm_sent:.1f} s")

    sent: dict[str, float] = {}
    for address, raw in mails[1:]:
        sent[address] = deliver(address, raw)
        time.sleep(args.interval)
    wait_for(list(sent))
    done.set()
    watcher.stop.set()
    threads[0].join(60)

    missing = [address for address in sent if address not in arrived]
    waits = [arrived[address] - sent[address] for address in sent if address in arrived]
    print(f"{len(sent)} mails, one every {args.interval:g} s, debounce {quiet:g} s: "
          f"{watcher.stats.runs - runs_before} collect run(s) answered them"
          + (f"; {len(missing)} never answered" if missing else ""))
    if waits:
        print(f"APPEND → reply at the SMTP server: p50 {statistics.median(waits):.1f} s, "
              f"p95 {percentile(waits, 0.95):.1f} s, max {max(waits):.1f} s (target p95 ≤ 60 s)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
