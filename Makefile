# Developer shortcuts; CI runs .ci/run. Tests use PostgreSQL 15 unless PGGUARD_PG_VERSIONS says
# otherwise (`make test-all` runs all five supported majors, as CI does).
PY := .venv/bin/python

.PHONY: check test test-all lint types fmt fmt-check fetch demo

check: fmt-check lint types test

test: | $(PY)
	$(PY) -m pytest -q

test-all: | $(PY)
	$(PY) -m pgguard.localpg fetch 14 15 16 17 18
	PGGUARD_PG_VERSIONS=14,15,16,17,18 $(PY) -m pytest -q

lint: | $(PY)
	.venv/bin/ruff check .

types: | $(PY)
	.venv/bin/mypy

fmt: | $(PY)
	.venv/bin/ruff check --select I --fix .
	.venv/bin/ruff format .

fmt-check: | $(PY)
	.venv/bin/ruff format --check .

fetch: | $(PY)
	$(PY) -m pgguard.localpg fetch 14 15 16 17 18

demo: | $(PY)
	.venv/bin/pgguard demo

$(PY):
	python3 -m venv .venv
	$(PY) -m pip install -e '.[dev]'
