#!/usr/bin/env bash
# The operator's Prefect setup for GEC Reports (docs/operations.md).
#
#   scripts/serve.sh                 server + apply + worker, in the foreground; Ctrl-C stops all three
#   scripts/serve.sh server          only the Prefect server (foreground; e.g. one systemd unit)
#   scripts/serve.sh worker          only a worker for the gec-process pool (foreground; another unit)
#   scripts/serve.sh apply [NAME…]   against the running server: work pool, the gec-db-write tag
#                                    limit, the deployments of prefect.yaml (all, or the NAMEs) and the
#                                    automations of ops/automations/; safe to re-run after a change
#
# Settings come from the environment, and from `.env` in the checkout when it exists (KEY=value lines):
#   GEC_PREFECT_HOST, GEC_PREFECT_PORT   where the server listens (127.0.0.1, 4200)
#   PREFECT_API_URL                      the server the worker and `apply` talk to (default: the above)
#   PREFECT_HOME                         Prefect's own state (default data/prefect in the checkout)
#   PREFECT_API_DATABASE_CONNECTION_URL  Prefect's own database (default: SQLite under PREFECT_HOME;
#                                        postgresql+asyncpg://… for a PostgreSQL one)
#   PREFECT_SERVER_API_AUTH_STRING       "user:password": the API and UI ask for it (basic auth);
#                                        clients started here get it as PREFECT_API_AUTH_STRING
#   GEC_DATABASE_URL, GEC_INBOX_DIR, …   the app's settings: the worker passes its environment to runs
#   GEC_DB_WRITE_SLOTS                   size of the gec-db-write limit (1 on SQLite, 4 on PostgreSQL)
#   GEC_OPS_NOTIFY_BLOCK, GEC_OPS_WEBHOOK_URL   the operator's notification block (see apply_automations.py)
#                                        optional: without a channel the server, deployments and
#                                        worker still start; `apply` warns that alerts are off
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# .env fills in what the environment does not set, as pydantic-settings does for the app itself:
# a variable set by the caller (a systemd unit, a test) always wins over the file.
if [[ -f .env ]]; then
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    if [[ "$value" =~ ^\"(.*)\"[[:space:]]*$ || "$value" =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value="${BASH_REMATCH[1]}"
    fi
    [[ -n "${!key+set}" ]] || export "$key=$value"
  done < .env
fi

PREFECT="${PREFECT_BIN:-$ROOT/.venv/bin/prefect}"
PYTHON="${PYTHON_BIN:-$ROOT/.venv/bin/python}"
POOL=gec-process
DB_WRITE_TAG=gec-db-write   # flows/policies.py DB_WRITE_TAG
HOST="${GEC_PREFECT_HOST:-127.0.0.1}"
PORT="${GEC_PREFECT_PORT:-4200}"

export PREFECT_HOME="${PREFECT_HOME:-$ROOT/data/prefect}"
export PREFECT_API_URL="${PREFECT_API_URL:-http://$HOST:$PORT/api}"
# The deployments' pull step changes into this folder on the worker (prefect.yaml).
export GEC_PROJECT_DIR="${GEC_PROJECT_DIR:-$ROOT}"
# Never report usage to anyone from the office's machines.
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
if [[ -n "${PREFECT_SERVER_API_AUTH_STRING:-}" && -z "${PREFECT_API_AUTH_STRING:-}" ]]; then
  export PREFECT_API_AUTH_STRING="$PREFECT_SERVER_API_AUTH_STRING"
fi
mkdir -p "$PREFECT_HOME"

log() { printf '[serve] %s\n' "$*" >&2; }

wait_for_server() {
  # /health answers without credentials even when basic auth is on.
  "$PYTHON" - "$PREFECT_API_URL" <<'EOF'
import sys, time, urllib.request
url = sys.argv[1].rstrip("/") + "/health"
deadline = time.monotonic() + 180
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"the Prefect server at {url} did not answer within 180 s")
    time.sleep(1)
EOF
}

db_write_slots() {
  if [[ -n "${GEC_DB_WRITE_SLOTS:-}" ]]; then
    echo "$GEC_DB_WRITE_SLOTS"
  elif [[ "${GEC_DATABASE_URL:-}" == postgres* ]]; then
    echo 4
  else
    echo 1  # SQLite: one writer at a time anyway; more slots only queue on its lock
  fi
}

run_server() {
  log "Prefect server on http://$HOST:$PORT (home $PREFECT_HOME)"
  exec "$PREFECT" server start --host "$HOST" --port "$PORT"
}

run_worker() {
  log "worker for pool $POOL (runs execute in $GEC_PROJECT_DIR)"
  exec "$PREFECT" worker start --pool "$POOL" --type process
}

apply() {
  wait_for_server
  if ! "$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1; then
    log "creating work pool $POOL"
    "$PREFECT" work-pool create "$POOL" --type process
  fi
  local slots
  slots="$(db_write_slots)"
  log "tag concurrency limit $DB_WRITE_TAG = $slots"
  "$PREFECT" concurrency-limit create "$DB_WRITE_TAG" "$slots" >/dev/null
  if (($#)); then
    local names=()
    for name in "$@"; do names+=(--name "$name"); done
    log "deploying ${*}"
    "$PREFECT" --no-prompt deploy "${names[@]}"
  else
    log "deploying every deployment of prefect.yaml"
    "$PREFECT" --no-prompt deploy --all
  fi
  log "applying the automations of ops/automations/"
  "$PYTHON" scripts/apply_automations.py
}

stop() {
  # Stop one process this script started. A Prefect worker takes the first SIGTERM as "finish what
  # runs" and may linger even when idle; a second one makes it exit. SIGKILL if all else fails.
  local pid="$1" grace="$2" attempt i
  for attempt in 1 2; do
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 2; i++)); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.5
    done
  done
  log "process $pid did not stop: killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

server_pid=""
worker_pid=""
shutdown() {
  # The worker first, while the server can still record that it left; then the server.
  trap - EXIT INT TERM
  [[ -n "$worker_pid" ]] && stop "$worker_pid" 10
  [[ -n "$server_pid" ]] && stop "$server_pid" 20
}

run_all() {
  trap shutdown EXIT
  trap 'exit 130' INT TERM
  "$PREFECT" server start --host "$HOST" --port "$PORT" &
  server_pid=$!
  apply
  "$PREFECT" worker start --pool "$POOL" --type process &
  worker_pid=$!
  log "ready: UI at http://$HOST:$PORT; Ctrl-C stops the worker and the server"
  wait -n "$server_pid" "$worker_pid" || true
  log "a process ended: stopping the rest"
}

case "${1:-all}" in
  all) run_all ;;
  server) run_server ;;
  worker) run_worker ;;
  apply) shift; apply "$@" ;;
  *) echo "usage: scripts/serve.sh [all|server|worker|apply [DEPLOYMENT…]]" >&2; exit 2 ;;
esac
