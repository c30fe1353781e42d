"""Pytest plugin: a real Prefect server on loopback, background processes for it, UI screenshots.

Register with `pytest_plugins = ["tests.support.prefect_server"]` (or `-p tests.support.prefect_server`).

- `prefect_server` (module scope): `prefect server start` on a free 127.0.0.1 port with a throwaway
  PREFECT_HOME and its own SQLite database, basic auth on (PREFECT_SERVER_API_AUTH_STRING), the
  scheduler and late-runs services off (tests ask the server for runs explicitly, so no scheduled run
  ever starts behind a test's back). Stopped, with its whole process group, after the module.
- `PrefectServer.client()`: a `SyncPrefectClient` for the server; `PrefectServer.env(...)`: an
  environment for subprocesses (CLI, worker) pointing at it.
- `background(...)`: run a command (a worker, a script) in its own process group, stopped on exit.
- `screenshot_ui(...)`: headless Chromium over the DevTools protocol: log in to the UI, open pages,
  wait until each shows the expected text, save PNGs; returns each page's text.

Each pytest-xdist worker is its own session, so each gets its own server and port.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
VENV_BIN = Path(sys.executable).parent
PREFECT = str(VENV_BIN / "prefect")
STARTUP_TIMEOUT = 240  # seconds: a cold server imports ~6 s of code and migrates a new database
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
)


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _bytecode_env() -> dict[str, str]:
    """Return variables that let subprocesses keep compiled bytecode when the venv ships none.

    With PYTHONDONTWRITEBYTECODE set and no .pyc in .venv, every Prefect process (server, CLI,
    worker, each flow run) recompiles Prefect from source: ~4 s apiece. A shared cache outside the
    source tree (PYTHONPYCACHEPREFIX) is written atomically by Python, so concurrent workers are safe.
    """
    import prefect

    compiled = (Path(prefect.__file__).parent / "__pycache__").is_dir()
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or compiled:
        return {}
    return {"PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / f"gec-test-pycache-{os.getuid()}")}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without PREFECT_* and GEC_* variables, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "GEC_"))}
    cache = _bytecode_env()
    if cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(cache)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DO_NOT_TRACK"] = "1"
    env.update(extra or {})
    return env


def _stop(process: subprocess.Popen[bytes], grace: float = 5) -> None:
    """Stop a process started in its own session, and its children, by its process-group id.

    A Prefect worker treats the first SIGTERM as "finish what is running" and can linger after it
    even when idle; the second makes it exit at once. Then SIGKILL for anything left.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children that outlived their parent


def tail(path: Path, lines: int = 40) -> str:
    """Return the end of a log file, for failure messages."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def background(
    command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path = PROJECT_ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group with output to `log`; stop the group on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop(process)


@dataclass
class PrefectServer:
    """A running `prefect server start` and how to reach it."""

    url: str
    home: Path
    auth: str
    log: Path
    base_env: dict[str, str] = field(repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return an environment for a subprocess (CLI, worker, script) that talks to this server."""
        return {**self.base_env, **(extra or {})}

    def client(self) -> Any:
        """Return a synchronous Prefect client for this server (a context manager)."""
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.api_url, auth_string=self.auth)

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        """Call the REST API directly; return (status, decoded JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(self.auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload else None
        except urllib.error.HTTPError as error:
            return error.code, None


@contextlib.contextmanager
def running_server(root: Path) -> Iterator[PrefectServer]:
    """Start a Prefect server under `root` (home, database, log) and stop it afterwards."""
    port = free_port()
    home = root / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://{HOST}:{port}"
    auth = f"operator:{secrets.token_urlsafe(12)}"
    env = clean_env({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"{url}/api",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_API_AUTH_STRING": auth,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_LOGGING_COLORS": "false",
    })
    log = root / "prefect-server.log"
    command = [PREFECT, "server", "start", "--host", HOST, "--port", str(port)]
    with background(command, env, log) as process:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {process.returncode}:\n{tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not answer within {STARTUP_TIMEOUT} s:\n{tail(log)}")
            time.sleep(0.5)
        yield PrefectServer(url=url, home=home, auth=auth, log=log, base_env=env)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server on loopback for one test module, with basic auth on."""
    with running_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


# --------------------------------------------------------------------------------------------------
# The UI through headless Chromium (DevTools protocol: the UI keeps its basic-auth login in localStorage)


@dataclass(frozen=True)
class Shot:
    """A UI page to capture once it shows every string of `expect`."""

    path: str
    out: Path
    expect: tuple[str, ...]
    width: int | None = None  # wider than the default for wide tables


def _devtools_page(profile: Path, process: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """Return the DevTools websocket URL of Chromium's first page."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while not (port_file.exists() and port_file.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Chromium did not open its DevTools port")
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    while True:
        with urllib.request.urlopen(f"http://{HOST}:{port}/json/list", timeout=5) as response:
            pages = [item for item in json.load(response) if item.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise RuntimeError("Chromium opened no page")
        time.sleep(0.1)


def screenshot_ui(
    server: PrefectServer, shots: Sequence[Shot], workdir: Path, *, width: int = 1600, height: int = 1300,
    timeout: float = 90,
) -> dict[str, str]:
    """Log in to the server's UI in headless Chromium, capture each page; return path -> page text."""
    from websockets.sync.client import connect

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is not installed (scripts/install-system-deps.sh installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
               f"--window-size={width},{height}", "about:blank"]
    texts: dict[str, str] = {}
    with background(command, clean_env(), workdir / "chromium.log") as process, connect(
        _devtools_page(profile, process), max_size=64 * 1024 * 1024, open_timeout=30
    ) as socket_:
        ids = itertools.count(1)

        def call(method: str, **params: Any) -> dict[str, Any]:
            message_id = next(ids)
            socket_.send(json.dumps({"id": message_id, "method": method, "params": params}))
            while True:
                message = json.loads(socket_.recv(timeout=60))
                if message.get("id") == message_id:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return dict(message["result"])

        def page_text() -> str:
            result = call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                          returnByValue=True)
            return str(result["result"].get("value") or "")

        call("Page.enable")
        # Same origin as the UI, then the login the UI's own form would store.
        call("Page.navigate", url=f"{server.api_url}/health")
        time.sleep(1)
        token = base64.b64encode(server.auth.encode()).decode()
        call("Runtime.evaluate", expression=f"localStorage.setItem('prefect-password', '{token}')")
        for shot in shots:
            call("Emulation.setDeviceMetricsOverride", width=shot.width or width, height=height,
                 deviceScaleFactor=1, mobile=False)
            call("Page.navigate", url=f"{server.url}{shot.path}")
            deadline = time.monotonic() + timeout
            text = page_text()
            while not all(expected in text for expected in shot.expect):
                if time.monotonic() > deadline:
                    missing = [expected for expected in shot.expect if expected not in text]
                    raise AssertionError(
                        f"UI page {shot.path} never showed {missing}; it shows:\n{text[:3000]}")
                time.sleep(0.5)
                text = page_text()
            time.sleep(1.5)  # let charts and fonts settle after the data arrived
            shot.out.parent.mkdir(parents=True, exist_ok=True)
            shot.out.write_bytes(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
            texts[shot.path] = page_text()
    shutil.rmtree(profile, ignore_errors=True)
    return texts
