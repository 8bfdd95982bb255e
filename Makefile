# Newcomer commands: `make demo` (the pipeline on Azurite + SQLite) and `make test`.
PY := .venv/bin/python
.DEFAULT_GOAL := help

help:
	@echo "make demo    - install what is missing, run the pipeline end to end on sample images"
	@echo "make test    - install what is missing, run every test (real Azurite, SQLite, PostgreSQL)"
	@echo "make run     - Azurite + local host, watching images-input until Ctrl-C"
	@echo "make azurite - Azurite blob + queue + table on 10000-10002, for 'func start' (Core Tools)"
	@echo "make upload FILES='a.jpg dir/'  - upload files or folders into images-input"
	@echo "make show [FORMAT=table|json|csv] - print the ImageMetadata table"
	@echo "make migrate - run the schema migrations against SqlConnectionString (needs DDL rights)"
	@echo "make status [FORMAT=table|json] - counts, top failure reasons, backlog, latency, reconciliation"
	@echo "make reconcile - one reconciliation pass now (start what has no final row, mark rows of gone blobs)"
	@echo "make reindex [STATUS=failed,rejected] [PREFIX=a/] [BEFORE=2026-12-01T00:00:00Z] - re-index rows"
	@echo "               (no filter: every row written by an older ExtractorVersion)"
	@echo "make bench   - extraction benchmark against exiftool and ImageMagick"
	@echo "make lint    - ruff"

setup:
	@bash scripts/bootstrap.sh demo

setup-test:
	@bash scripts/bootstrap.sh test

demo: setup
	$(PY) -m devhost demo

run: setup
	$(PY) -m devhost run

azurite: setup
	$(PY) -m devhost azurite

upload: setup
	$(PY) -m devhost upload $(FILES)

show: setup
	$(PY) -m devhost show --format $(or $(FORMAT),table)

test: setup-test
	$(PY) -m pytest -q

status: setup
	$(PY) -m devhost status --format $(or $(FORMAT),table)

reconcile: setup
	$(PY) -m devhost reconcile

reindex: setup
	$(PY) -m devhost reindex $(if $(STATUS),--status '$(STATUS)') $(if $(PREFIX),--prefix '$(PREFIX)') $(if $(BEFORE),--before '$(BEFORE)')

lint: setup-test
	$(PY) -m ruff check .

migrate: setup
	$(PY) -m shared.store

bench: setup-test
	$(PY) -m bench.extraction

.PHONY: help setup setup-test demo run azurite upload show migrate status reconcile reindex test lint bench
