# GridLink local development. `make up` runs the whole system; `make test` runs every test.
SHELL := /bin/bash
PY := .cache/venv/bin/python
LOCAL := deploy/local

.PHONY: help install up down status logs seed import-county republish-directory county dlq test gates unit bench

help:
	@echo "make up      install what is missing, start Kafka, PostgreSQL, MinIO, the OpenID Connect provider, the five services and the console"
	@echo "make down    stop exactly what make up started"
	@echo "make status  what is running"
	@echo "make logs    follow the service and server logs"
	@echo "make bench   benchmarks (SLA timers, placement, broadcast, console queue, 派单 burst, triage, memory, scorecards, pipeline latency, intake throughput), printing figures and ratios against baselines"
	@echo "make seed    import the demo county (shared/data/counties/330727) into dispatch"
	@echo "make import-county DIR=...  validate a county's files and import them as a new version (docs/go-live.md)"
	@echo "make republish-directory  publish dispatch's whole directory and rosters again to notify (after an upgrade, or a rebuilt notify database)"
	@echo "make county  regenerate the demo and sample counties' files (shared/data/counties/, county.geojson, groups.csv, deploy/k8s/county)"
	@echo "make dlq     list the dead letters; ARGS=\"show|replay [--group G] [--reason R] [--topic T] [--since/--until ISO] [--dry-run]\""
	@echo "make test    install what is missing, run the gates (ruff, mypy) and all tests with coverage"
	@echo "make gates   lint, format check and type check only"

install:
	@$(LOCAL)/python.sh
	@$(LOCAL)/infra.sh install
	@$(LOCAL)/tools.sh install

up: install
	@$(LOCAL)/infra.sh start
	@$(LOCAL)/services.sh start
	@source $(LOCAL)/env.sh && echo && echo "GridLink is up:" && \
	  echo "  console   http://127.0.0.1:$$GRIDLINK_CONSOLE_PORT/  (工作台: 使用统一身份认证登录, e.g. dispatcher / gridlink-demo)" && \
	  echo "  login     $$GRIDLINK_AUTH_OIDC_ISSUER  (the local OpenID Connect provider; README: Logging in)" && \
	  echo "  H5 pages  http://127.0.0.1:$$GRIDLINK_INTAKE_PORT/h5/  (我要反映)  /h5/query  (我要查询)" && \
	  echo "  intake    http://127.0.0.1:$$GRIDLINK_INTAKE_PORT/docs" && \
	  echo "  dispatch  http://127.0.0.1:$$GRIDLINK_DISPATCH_PORT/docs" && \
	  echo "  sla       http://127.0.0.1:$$GRIDLINK_SLA_PORT/docs" && \
	  echo "  notify    http://127.0.0.1:$$GRIDLINK_NOTIFY_PORT/docs" && \
	  echo "  media     http://127.0.0.1:$$GRIDLINK_MEDIA_PORT/docs" && \
	  echo "  fake WeCom messages  http://127.0.0.1:$$GRIDLINK_FAKE_WECOM_PORT/_fake/messages"

down:
	@$(LOCAL)/services.sh stop
	@$(LOCAL)/infra.sh stop

status:
	@$(LOCAL)/infra.sh status
	@$(LOCAL)/services.sh status

logs:
	@source $(LOCAL)/env.sh && tail -n 50 -F $$GRIDLINK_RUN_DIR/logs/*.log

seed: install
	@$(LOCAL)/infra.sh start postgres
	@source $(LOCAL)/env.sh && $(PY) -m services.dispatch.county_import shared/data/counties/330727

import-county: install
	@test -n "$(DIR)" || { echo "usage: make import-county DIR=path/to/county (divisions.csv, grids.geojson, groups.csv, workers.csv)"; exit 2; }
	@$(LOCAL)/infra.sh start postgres
	@source $(LOCAL)/env.sh && $(PY) -m services.dispatch.county_import "$(DIR)"

republish-directory: install
	@$(LOCAL)/infra.sh start postgres
	@source $(LOCAL)/env.sh && $(PY) -m services.dispatch.directory_publish

county: install
	@$(PY) -m devtools.demo_county
	@$(PY) -m devtools.deploy_gen county

dlq: install
	@source $(LOCAL)/env.sh && $(PY) -m shared.deadletters $(or $(ARGS),list)

# Fast gates first (seconds), then every suite with the coverage report and its floor at the end.
test: install gates
	@$(PY) -m pytest -q --cov --cov-report=term

gates: install
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy

unit: install
	@$(PY) -m pytest -q tests/unit tests/contracts

bench: install
	@$(PY) bench/sla_timers.py
	@$(PY) bench/placement.py
	@$(PY) bench/notify_broadcast.py
	@$(PY) bench/console_queue.py
	@$(PY) bench/notify_burst.py
	@$(PY) bench/triage.py
	@$(PY) bench/service_memory.py
	@$(PY) bench/scorecards.py
	@$(PY) bench/pipeline_latency.py
	@$(PY) bench/intake_throughput.py
