# The two quick-start commands: `make serve` and `make test`. Both set up from nothing.
# `make serve PORT=8080 HOST=0.0.0.0` listens elsewhere.
.PHONY: serve test lint pytest nodetest bench bench-gzip bench-workers

HOST ?= 127.0.0.1
PORT ?= 8000

serve:
	scripts/setup
	.venv/bin/trace-svc serve --host $(HOST) --port $(PORT)

test:
	scripts/setup --dev
	$(MAKE) lint pytest nodetest

lint:
	.venv/bin/ruff check svc tests bench
	.venv/bin/ruff format --check svc tests bench
	.venv/bin/mypy
	cd frontend && npx --no-install tsc -p .

pytest:
	.venv/bin/pytest -p no:cacheprovider

nodetest:
	cd frontend && node --test test/

bench:
	scripts/setup --dev
	.venv/bin/python -m pip install -q -e '.[dev,bench]'
	.venv/bin/python bench/stream_bench.py
	.venv/bin/python bench/profile_split.py

bench-gzip:
	scripts/setup --dev
	.venv/bin/python bench/gzip_bench.py

bench-workers:
	scripts/setup --dev
	.venv/bin/python bench/workers_bench.py
