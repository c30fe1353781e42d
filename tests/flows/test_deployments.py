"""Deployments, the operator's setup and monitoring (SPEC §6, issue #6).

Fast checks read prefect.yaml, the automation files and the flows' parameter schemas, and compute the
schedules with the Prefect server's own cron model. The end-to-end test drives the operator's setup
for real: a Prefect server on loopback with basic auth, `scripts/serve.sh apply` (work pool, tag
limit, `prefect --no-prompt deploy --all`, automations), a process worker from `scripts/serve.sh
worker`, runs created through the API exactly as the UI's Run button creates them, automations that
POST to a local webhook, and headless-Chromium screenshots of the UI (outputs/prefect-ui/*.png).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.support.prefect_server import (
    PROJECT_ROOT,
    Shot,
    background,
    free_port,
    running_server,
    screenshot_ui,
    tail,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
AUTOMATIONS = sorted((PROJECT_ROOT / "ops" / "automations").glob("*.yaml"))
SCREENSHOTS = Path(os.environ.get("GEC_UI_SCREENSHOT_DIR", PROJECT_ROOT / "outputs" / "prefect-ui"))
POOL = "gec-process"
H1 = "2023-H1"
DEMO_SEED = 7
REPORT_AS_OF = "2023-05-06T08:00:00+07:00"

# deployment -> (entrypoint, flow name, {(cron, schedule parameters as JSON)})
DEPLOYMENTS: dict[str, tuple[str, str, set[tuple[str, str]]]] = {
    "collect-submissions": ("flows.collect:collect_submissions", "collect-submissions", {
        ("*/30 7-18 * 4,5,10,11 *", "{}"), ("0 19 * 4,5,10,11 *", "{}"), ("0 7 * 1-3,6-9,12 *", "{}")}),
    # Reports and reminders follow reference/cycles.yaml through the daily calendar run.
    "gec-daily": ("flows.calendar:gec_daily", "gec-daily", {("0 8 * * *", "{}")}),
    "build-cycle-report": ("flows.report:build_cycle_report", "build-cycle-report", set()),
    "build-annual-report": ("flows.report:build_annual_report", "build-annual-report", set()),
    "send-reminders": ("flows.remind:send_reminders", "send-reminders", set()),
    "review-submission": ("flows.review:review_submission", "review-submission", set()),
    "revalidate-submissions": ("flows.review:revalidate_submissions", "revalidate-submissions", set()),
    "watch-mailbox": ("flows.watch:watch_submissions", "watch-mailbox", {("0 * * * *", "{}")}),
}
# Tasks that write the application database, by flow module: each must carry the tag the
# gec-db-write concurrency limit throttles.
DB_WRITING_TASKS = {
    "flows.collect": ("prepare_database", "store_raw", "store_submissions", "queue_replies", "flush_outbox"),
    "flows.report": ("load_report_data", "record_run", "distribute", "flush_outbox"),
    "flows.review": ("record_review", "rewrite_decisions"),
    "flows.remind": ("prepare_database", "queue_reminders", "flush_outbox"),
}
SECRET_KEY = re.compile(r"password|passwd|secret|token|api_?key|auth_string", re.I)
CREDENTIALS_IN_URL = re.compile(r"\w+://[^/\s:@]+:[^/\s@]+@")


def _prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))


def _deployments() -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in _prefect_yaml()["deployments"]}


def _schedule_keys(schedules: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(item["cron"], json.dumps(item.get("parameters") or {}, sort_keys=True)) for item in schedules}


def _runs_between(schedules: Sequence[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> list[
    tuple[dt.datetime, dict[str, Any]]
]:
    """Return every (local start time, parameters) the schedules produce in [start, end), sorted."""
    from prefect.server.schemas.schedules import CronSchedule

    async def dates(item: dict[str, Any]) -> list[dt.datetime]:
        schedule = CronSchedule(cron=item["cron"], timezone=item["timezone"])
        found: list[dt.datetime] = []
        # The server computes at most 1,000 dates per call (MAX_ITERATIONS): ask a month at a time.
        month = start
        while month < end:
            following = (month.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
            found += await schedule.get_dates(n=1000, start=month, end=min(following, end))
            month = following
        return found

    runs = []
    for item in schedules:
        for moment in asyncio.run(dates(item)):
            runs.append((dt.datetime.fromtimestamp(moment.timestamp(), HCM), item.get("parameters") or {}))
    return sorted(runs, key=lambda pair: pair[0])


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", key
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def _load_apply_script() -> Any:
    import importlib.util

    path = PROJECT_ROOT / "scripts" / "apply_automations.py"
    spec = importlib.util.spec_from_file_location("apply_automations", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------
# prefect.yaml as a file


def test_prefect_yaml_declares_the_deployments_for_the_process_pool() -> None:
    config = _prefect_yaml()
    deployments = _deployments()
    assert set(deployments) == set(DEPLOYMENTS)
    # The worker runs every flow from the checkout: the pull step is resolved on the worker at run time.
    assert config["pull"] == [{"prefect.deployments.steps.set_working_directory": {
        "directory": "{{ $GEC_PROJECT_DIR }}"}}]
    for name, (entrypoint, _flow, schedules) in DEPLOYMENTS.items():
        item = deployments[name]
        assert item["entrypoint"] == entrypoint, name
        assert item["work_pool"]["name"] == POOL, name
        assert _schedule_keys(item.get("schedules") or []) == schedules, name
        for schedule in item.get("schedules") or []:
            assert schedule["timezone"] == "Asia/Ho_Chi_Minh", (name, schedule)
    slugs = [schedule["slug"] for item in deployments.values() for schedule in item.get("schedules") or []]
    assert len(slugs) == len(set(slugs)), "schedule slugs identify schedules across re-deploys"


def test_prefect_yaml_holds_no_secret() -> None:
    for path, value in _walk(_prefect_yaml()):
        if isinstance(value, str):
            assert not SECRET_KEY.search(value) or value.startswith("{{"), f"{path}: {value!r}"
            assert not CREDENTIALS_IN_URL.search(value), f"{path}: credentials in a URL"


def test_collect_runs_every_half_hour_in_the_submission_months_and_daily_otherwise() -> None:
    schedules = _deployments()["collect-submissions"]["schedules"]
    start, end = dt.datetime(2027, 1, 1, tzinfo=HCM), dt.datetime(2028, 1, 1, tzinfo=HCM)
    by_day: dict[dt.date, list[dt.time]] = {}
    for moment, _ in _runs_between(schedules, start, end):
        by_day.setdefault(moment.date(), []).append(moment.time())
    window = [dt.time(hour, minute) for hour in range(7, 19) for minute in (0, 30)] + [dt.time(19, 0)]
    assert len(by_day) == 365, "a collect every day of the year"
    for day, times in by_day.items():
        expected = window if day.month in (4, 5, 10, 11) else [dt.time(7, 0)]
        assert times == expected, day


def test_report_and_reminders_follow_the_cycle_deadlines() -> None:
    from config.settings import get_settings
    from flows.calendar import DueJob, due_jobs
    from schemas.reference import load_reference

    calendar = load_reference(get_settings().reference_dir).calendar
    start, end = dt.datetime(2027, 1, 1, tzinfo=HCM), dt.datetime(2028, 1, 1, tzinfo=HCM)
    daily = _runs_between(_deployments()["gec-daily"]["schedules"], start, end)
    assert len(daily) == 365 and {moment.time() for moment, _ in daily} == {dt.time(8, 0)}
    ran = [(moment.date(), job) for moment, _ in daily for job in due_jobs(calendar, moment.date())]
    expected = []
    for half in ("H1", "H2"):
        cycle = calendar.get(f"2027-{half}")
        assert cycle is not None
        day_after = cycle.deadline + dt.timedelta(days=1)
        expected += [(cycle.deadline - dt.timedelta(days=7), DueJob("reminder", cycle.id)),
                     (day_after, DueJob("report", cycle.id)), (day_after, DueJob("overdue", cycle.id))]
    assert ran == expected
    # The report of the day after a deadline is the half-year that has just closed.
    from flows.report import default_cycle

    reports = [dt.datetime.combine(day, dt.time(8, 0), HCM) for day, job in ran if job.kind == "report"]
    assert [default_cycle(moment) for moment in reports] == ["2027-H1", "2027-H2"]


# --------------------------------------------------------------------------------------------------
# The flows behind the deployments


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_parameters_are_typed_and_schedules_fit_them(name: str) -> None:
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    entrypoint, flow_name, _ = DEPLOYMENTS[name]
    flow = load_flow_from_entrypoint(entrypoint)
    assert flow.name == flow_name
    schema = parameter_schema(flow).model_dump()
    for parameter, spec in schema["properties"].items():
        # A typed parameter renders as a form field in the UI; an untyped one as a raw JSON box.
        assert "type" in spec or "anyOf" in spec or "$ref" in spec or "allOf" in spec, (name, parameter)
    properties = schema["properties"]
    if name == "review-submission":
        assert properties["decision"]["enum"] == ["accept", "reject", "received-at-only"]
        assert {"format": "date-time", "type": "string"} in properties["received_at"]["anyOf"]
        assert properties["submission_id"]["type"] == "integer"
        assert {"submission_id", "decision"} <= set(schema["required"])
        assert "note" in properties
    if name == "build-cycle-report":
        cycle = properties["cycle"]
        assert cycle.get("type") == "string" or {"type": "string"} in cycle["anyOf"]
        assert {"format": "date-time", "type": "string"} in properties["as_of"]["anyOf"]
    if name == "build-annual-report":
        assert properties["year"]["type"] == "integer" and "year" in schema["required"]
    if name == "send-reminders":
        assert {"reminder", "overdue"} <= set(properties["kind"]["enum"])
    if name == "collect-submissions":
        assert "folder" in properties["source"]["enum"]

    deployment = _deployments()[name]
    for schedule in deployment.get("schedules") or []:
        parameters = {**(deployment.get("parameters") or {}), **(schedule.get("parameters") or {})}
        # A scheduled run has no one to fill in a required parameter: the schedule must supply it.
        missing = set(schema.get("required") or []) - set(parameters)
        assert not missing, (name, schedule["slug"], missing)
        flow.validate_parameters(parameters)


def test_database_writing_tasks_carry_the_concurrency_tag() -> None:
    import importlib

    from flows.policies import DB_WRITE_TAG

    untagged = []
    for module_name, task_names in DB_WRITING_TASKS.items():
        module = importlib.import_module(module_name)
        for task_name in task_names:
            if DB_WRITE_TAG not in getattr(module, task_name).tags:
                untagged.append(f"{module_name}.{task_name}")
    serve_sh = (PROJECT_ROOT / "scripts" / "serve.sh").read_text(encoding="utf-8")
    assert f"DB_WRITE_TAG={DB_WRITE_TAG}" in serve_sh, "serve.sh limits the tag the flows use"
    assert not untagged, f"tasks without tags=[flows.policies.DB_WRITE_TAG]: {', '.join(untagged)}"


def test_collect_publishes_failed_validations_and_one_event_per_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flows.collect as collect
    from tasks.operator.summary import CollectSummary, Problem

    tables: list[dict[str, Any]] = []
    markdowns: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(collect, "create_table_artifact", lambda **kwargs: tables.append(kwargs))
    monkeypatch.setattr(collect, "create_markdown_artifact", lambda **kwargs: markdowns.append(kwargs))
    monkeypatch.setattr(collect, "emit_event", lambda **kwargs: events.append(kwargs))
    problems = [
        Problem(submission_id=7, school_code="MN001", cycle_id=H1, file="MN001.xlsx", state="rejected",
                error_count=3, message="Trang \"Truyền thông\", dòng 8: …"),
        Problem(submission_id=8, school_code=None, cycle_id=H1, file="ghi chú.txt", state="rejected",
                error_count=1, message="Tệp không đọc được"),
        Problem(submission_id=9, school_code="TH002", cycle_id=H1, file="TH002.xlsx", state="held",
                error_count=0, message="Người gửi chưa đăng ký"),
    ]
    collect.publish_summary.fn(CollectSummary(files_seen=3, submissions=3, problems=problems))

    assert [table["key"] for table in tables] == ["failed-validations"]
    rows = tables[0]["table"]
    assert [(row["file"], row["state"], row["error_count"]) for row in rows] == [
        ("MN001.xlsx", "rejected", 3), ("ghi chú.txt", "rejected", 1), ("TH002.xlsx", "held", 0)]
    assert {"school_code", "file", "state", "error_count", "message"} <= set(rows[0])
    assert "value" not in rows[0], "a finding's value (possibly an incident count) never reaches an artifact"
    assert markdowns and "MN001.xlsx" in markdowns[0]["markdown"]
    assert [event["event"] for event in events] == [
        "gec.submission.rejected", "gec.submission.rejected", "gec.submission.held"]
    assert all(event["resource"]["prefect.resource.id"].startswith("gec.submission.") for event in events)
    schools = [
        [item for item in event.get("related") or [] if "school" in item.get("prefect.resource.id", "")]
        for event in events
    ]
    assert [item["prefect.resource.id"] for item in schools[0]] == ["gec.school.MN001"]
    assert schools[0][0]["prefect.resource.role"] == "school"
    assert schools[1] == [], "an unknown school has no resource"


def test_automation_definitions_validate_and_watch_the_right_events() -> None:
    from prefect.events.schemas.automations import AutomationCore

    script = _load_apply_script()
    definitions = script.load_automations(AUTOMATIONS)
    block_id = uuid.uuid4()
    automations = {item["name"]: AutomationCore.model_validate(script.with_block(item, block_id))
                   for item in definitions}
    assert set(automations) == {"gec-flow-run-failed", "gec-rejections-over-threshold"}
    for automation in automations.values():
        assert automation.enabled
        assert [action.type for action in automation.actions] == ["send-notification"]
        assert all(action.block_document_id == block_id for action in automation.actions)

    failed = automations["gec-flow-run-failed"].trigger
    assert {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"} <= failed.expect
    assert failed.threshold == 1
    assert "collect-submissions" in failed.match_related.root["prefect.resource.name"]

    rejected = automations["gec-rejections-over-threshold"].trigger
    assert rejected.expect == {"gec.submission.rejected"}
    assert rejected.threshold >= 2 and rejected.within.total_seconds() > 0


def test_apply_script_refuses_a_missing_block_name() -> None:
    script = _load_apply_script()
    with pytest.raises(script.SetupError, match="<block-type-slug>/<name>"):
        script.notification_block_id(object(), "gec-operator", None)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_starts_without_an_alert_channel_and_applies_alerts_once_one_is_set(tmp_path: Path) -> None:
    with running_server(tmp_path / "prefect") as server:
        # Set but empty: a developer's .env cannot fill them in (serve.sh lets the caller's values win).
        env = server.env({"GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}",
                          "GEC_PROJECT_DIR": str(PROJECT_ROOT), "GEC_OPS_WEBHOOK_URL": "",
                          "GEC_OPS_NOTIFY_BLOCK": ""})
        # One deployment keeps the test short; the automations step is the same as for all of them.
        result = subprocess.run(["bash", "scripts/serve.sh", "apply", "review-submission"], cwd=PROJECT_ROOT,
                                env=env, capture_output=True, text=True, timeout=420, check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        warnings = [line for line in output.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1, output[-4000:]
        assert "no alert channel" in warnings[0] and "GEC_OPS_WEBHOOK_URL" in warnings[0]
        assert "Traceback" not in output
        with server.client() as client:
            assert client.read_deployment_by_name("review-submission/review-submission").name
            assert client.read_automations_by_name("gec-flow-run-failed") == []

        # The operator sets the webhook and applies again: the alerts now exist and point at it.
        hook = f"http://127.0.0.1:{free_port()}/hook"
        output = _run([str(PROJECT_ROOT / ".venv" / "bin" / "python"), "scripts/apply_automations.py"],
                      {**env, "GEC_OPS_WEBHOOK_URL": hook})
        assert "created automation gec-flow-run-failed" in output
        assert "created automation gec-rejections-over-threshold" in output
        with server.client() as client:
            block = client.read_block_document_by_name("gec-operator", "custom-webhook")
            automation = client.read_automations_by_name("gec-flow-run-failed")[0]
        assert automation.actions[0].block_document_id == block.id


# --------------------------------------------------------------------------------------------------
# End to end: the operator's setup against a real server


class Webhook:
    """A loopback HTTP endpoint that keeps the JSON bodies POSTed to it (the operator's channel)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with owner.lock:
                    owner.bodies.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, text: str, timeout: float = 60) -> dict[str, Any]:
        """Return the first notification whose subject contains `text`, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for body in self.bodies:
                    if text in body.get("subject", ""):
                        return body
            time.sleep(0.5)
        raise AssertionError(f"no notification with {text!r} within {timeout} s; got {self.bodies}")


def _run(command: Sequence[str], env: dict[str, str], timeout: float = 420) -> str:
    result = subprocess.run(list(command), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output[-4000:]}"
    return output


def _wait_final(client: Any, flow_run_id: uuid.UUID, worker_log: Path, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"flow run {flow_run_id} still {run.state} after {timeout} s:\n{tail(worker_log)}")
        time.sleep(1)


def _trigger(client: Any, name: str, worker_log: Path, parameters: dict[str, Any],
             job_variables: dict[str, Any] | None = None) -> Any:
    """Create a run as the UI's Run button does (POST /deployments/{id}/create_flow_run); wait for it."""
    deployment = client.read_deployment_by_name(f"{name}/{name}")
    flow_run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters,
                                                      job_variables=job_variables)
    return _wait_final(client, flow_run.id, worker_log)


def _demo_inbox(reference: Any, root: Path) -> tuple[Path, dict[str, str]]:
    """Write the demo submissions of H1 into an inbox; return it and file -> expected state."""
    from demo.data import TRUTH_FILE, generate_demo_data

    generated = root / "demo"
    truth_file = generate_demo_data(reference, H1, generated, seed=DEMO_SEED)
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    inbox = root / "inbox"
    inbox.mkdir()
    for path in generated.iterdir():
        if path.name != TRUTH_FILE:
            shutil.copy2(path, inbox / path.name)  # copy2: the modification time is the received time
    return inbox, {item["file"]: item["expect_state"] for item in truth["files"]}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)  # ~2 min alone; twice that on a loaded 2-core machine
def test_operator_setup_end_to_end(postgres_url: str, tmp_path: Path) -> None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterTags,
    )

    from config.settings import get_settings
    from db.engine import make_engine
    from schemas.reference import load_reference
    from tasks.operator.status import cycle_status

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        timings[step] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    reference = load_reference(get_settings().reference_dir)
    inbox, expected = _demo_inbox(reference, tmp_path)
    rejected = {name for name, state in expected.items() if state == "rejected"}
    assert len(rejected) >= 10, "enough rejections to cross the automation's threshold"
    outputs, archive = tmp_path / "outputs", tmp_path / "archive"
    worker_log = tmp_path / "worker.log"
    lap("demo data")

    with Webhook() as webhook, running_server(tmp_path / "prefect") as server:
        lap("server start")
        env = server.env({
            "GEC_DATABASE_URL": postgres_url,
            "GEC_INBOX_DIR": str(inbox),
            "GEC_ARCHIVE_DIR": str(archive),
            "GEC_OUTPUT_DIR": str(outputs),
            "GEC_DATA_DIR": str(tmp_path / "data"),
            "GEC_TASK_RUNNER": "threads",
            "GEC_PROJECT_DIR": str(PROJECT_ROOT),
            "GEC_OPS_WEBHOOK_URL": webhook.url,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        })
        assert server.request("POST", "/deployments/filter", {}, auth=False)[0] == 401, "basic auth is on"
        assert server.request("POST", "/deployments/filter", {})[0] == 200

        output = _run(["bash", "scripts/serve.sh", "apply"], env)
        assert "deploying every deployment of prefect.yaml" in output  # prefect --no-prompt deploy --all
        assert "gec-db-write = 4" in output, "PostgreSQL gets 4 database-write slots"
        lap("serve.sh apply")

        with background(["bash", "scripts/serve.sh", "worker"], env, worker_log), server.client() as client:
            # Deployments as the server holds them: schedules, time zone, pool, typed parameters.
            for name, (entrypoint, flow_name, schedules) in DEPLOYMENTS.items():
                deployment = client.read_deployment_by_name(f"{flow_name}/{name}")
                assert deployment.entrypoint == entrypoint
                assert deployment.work_pool_name == POOL
                held = {(item.schedule.cron, json.dumps(item.parameters or {}, sort_keys=True))
                        for item in deployment.schedules}
                assert held == schedules, name
                assert all(item.schedule.timezone == "Asia/Ho_Chi_Minh" and item.active
                           for item in deployment.schedules), name
            collect = client.read_deployment_by_name("collect-submissions/collect-submissions")
            assert collect.parameters == {"source": "all"}
            one_at_a_time, options = collect.global_concurrency_limit, collect.concurrency_options
            assert one_at_a_time and one_at_a_time.limit == 1
            assert options and options.collision_strategy == "CANCEL_NEW"
            review = client.read_deployment_by_name("review-submission/review-submission")
            assert review.parameter_openapi_schema["properties"]["decision"]["enum"] == [
                "accept", "reject", "received-at-only"]

            # Next runs of the daily calendar job, as the server's scheduler computes them.
            report = client.read_deployment_by_name("gec-daily/gec-daily")
            now = dt.datetime.now(dt.UTC)
            status, _ = server.request("POST", f"/deployments/{report.id}/schedule", {
                "start_time": now.isoformat(), "end_time": (now + dt.timedelta(days=800)).isoformat(),
                "min_runs": 4, "max_runs": 4})
            assert status in (200, 201)
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[report.id])))
            upcoming = sorted(run.expected_start_time.astimezone(HCM)
                              for run in runs if run.state.is_scheduled())
            assert len(upcoming) == 4
            assert {(moment.hour, moment.minute) for moment in upcoming} == {(8, 0)}
            assert len({moment.date() for moment in upcoming}) == 4  # one a day
            for run in runs:
                client.delete_flow_run(run.id)

            limit = client.read_concurrency_limit_by_tag("gec-db-write")
            assert limit.concurrency_limit == 4
            automations = {item.name for item in client.read_automations()}
            assert {"gec-flow-run-failed", "gec-rejections-over-threshold"} <= automations
            lap("read back")

            # A collect over an inbox with bad workbooks completes and lists them.
            collect_run = _trigger(client, "collect-submissions", worker_log, {"source": "folder"})
            assert collect_run.state.is_completed(), f"{collect_run.state}\n{tail(worker_log)}"
            lap("collect run")
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[collect_run.id]),
                key=ArtifactFilterKey(any_=["failed-validations", "collect-summary"])))
            by_key = {artifact.key: artifact for artifact in artifacts}
            assert set(by_key) == {"failed-validations", "collect-summary"}
            table = by_key["failed-validations"]
            rows = json.loads(table.data) if isinstance(table.data, str) else table.data
            assert {row["file"] for row in rows} == rejected
            assert {row["state"] for row in rows} == {"rejected"}
            assert all(row["error_count"] >= 1 and row["message"] for row in rows)
            assert str(len(rejected)) in str(by_key["collect-summary"].data)
            assert not list(inbox.iterdir()), "every file archived"

            # The run's database writes went through the gec-db-write tag limit.
            limited = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[collect_run.id])),
                task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=["gec-db-write"])))
            assert {run.name.rsplit("-", 1)[0] for run in limited} >= {"store_raw", "store_submissions"}

            # One event per rejected submission reached the server, and the threshold alert fired.
            deadline = time.monotonic() + 60
            while True:
                _, found = server.request("POST", "/events/filter", {
                    "filter": {"event": {"name": ["gec.submission.rejected"]},
                               "occurred": {"since": (now - dt.timedelta(hours=1)).isoformat()}},
                    "limit": 50})  # the API pages events by 50 at most; `total` counts all
                if (found and found["total"] >= len(rejected)) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert found and found["total"] == len(rejected)
            for event in found["events"]:  # each names its school as a related resource
                school = event["payload"].get("school_code")
                related = [item["prefect.resource.id"] for item in event.get("related") or []
                           if item.get("prefect.resource.role") == "school"]
                assert related == ([f"gec.school.{school}"] if school else []), event
            notice = webhook.wait_for("submissions rejected within an hour")
            assert "failed-validations" in notice["body"]
            lap("artifact, events, threshold alert")

            # The report, re-run by hand with parameters.
            report_run = _trigger(client, "build-cycle-report", worker_log,
                                  {"cycle": H1, "as_of": REPORT_AS_OF})
            assert report_run.state.is_completed(), f"{report_run.state}\n{tail(worker_log)}"
            folder = outputs / H1 / "2023-05-06"
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            assert (manifest["cycle"], manifest["as_of"]) == (H1, REPORT_AS_OF)
            for name in ("tong-hop.html", "tong-hop.xlsx", "restricted/vu-viec.xlsx"):
                assert (folder / name).stat().st_size > 0
            assert (folder / "restricted" / "vu-viec.xlsx").stat().st_mode & 0o077 == 0
            html = (folder / "tong-hop.html").read_text(encoding="utf-8")
            assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in html and "08:00 06/05/2023" in html
            status_then = cycle_status(make_engine(postgres_url), reference, H1,
                                       dt.datetime.fromisoformat(REPORT_AS_OF))
            current = {row["submission_id"] for row in status_then["schools"] if row["submission_id"]}
            used = {item["id"] if isinstance(item, dict) else item for item in manifest["submissions"]}
            assert used == current and used
            lap("report run")

            # An infrastructure fault fails the run, and the operator hears of it.
            broken = {"env": {"GEC_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/gec_gone"}}
            failed_run = _trigger(client, "collect-submissions", worker_log, {"source": "folder"}, broken)
            assert failed_run.state.is_failed(), failed_run.state
            assert "DatabaseUnavailable" in (failed_run.state.message or "")
            alert = webhook.wait_for("collect-submissions run")
            assert "Failed" in alert["subject"] and str(failed_run.id) in alert["body"]
            lap("failed run and its alert")

            deployment_ids = {name: client.read_deployment_by_name(f"{flow_name}/{name}").id
                              for name, (_, flow_name, _) in DEPLOYMENTS.items()}

        # What the operator sees in the UI.
        first_rejected = sorted(rejected)[0]
        texts = screenshot_ui(server, [
            Shot("/deployments", SCREENSHOTS / "deployments.png", tuple(DEPLOYMENTS)),
            Shot(f"/deployments/deployment/{deployment_ids['collect-submissions']}",
                 SCREENSHOTS / "collect-submissions.png",
                 ("collect-window-half-hourly", "collect-daily", "Failed", "Completed")),
            Shot(f"/artifacts/artifact/{table.id}", SCREENSHOTS / "failed-validations.png",
                 ("failed-validations", f"{len(rejected)} Items", first_rejected, "rejected"), width=2600),
            Shot(f"/deployments/deployment/{deployment_ids['review-submission']}/run",
                 SCREENSHOTS / "review-submission-run-form.png", ("submission_id", "decision", "accept")),
        ], tmp_path / "chromium")
        assert all(texts.values())
        lap("screenshots")

    counts = Counter(expected.values())
    print(f"\nend-to-end: {dict(counts)}; timings (s): {timings}; screenshots in {SCREENSHOTS}")
