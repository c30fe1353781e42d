# Two commands matter: `make demo` and `make test`. Everything they need is installed from here.
SHELL := /bin/bash
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Compiled bytecode saves every Prefect process about 4 s of start-up.
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test lint install system-deps postgres bench serve clean

install: .venv/.synced

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q uv==$(UV_VERSION)

.venv/.synced: .tools/bin/uv pyproject.toml uv.lock
	$(UV) sync --frozen
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

postgres:
	bash scripts/ensure-postgres.sh

demo: install
	.venv/bin/gec demo

lint: install
	.venv/bin/ruff check .

test: install system-deps postgres
	.venv/bin/ruff check .
	.venv/bin/pytest -n 2 -p no:cacheprovider -q -rs

bench: install
	.venv/bin/python bench/ingest.py
	.venv/bin/python bench/rollup.py

clean:
	rm -rf .venv .tools data outputs/*/

# The operator's Prefect setup: server, work pool, limits, deployments, automations, worker (docs/operations.md).
serve: install
	bash scripts/serve.sh
