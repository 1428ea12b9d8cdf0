# The two quick-start commands: `make serve` and `make test`. Both set up from nothing.
.PHONY: serve test lint pytest nodetest bench

serve:
	scripts/setup
	.venv/bin/trace-svc serve --host 127.0.0.1 --port 8000

test:
	scripts/setup --dev
	$(MAKE) lint pytest nodetest

lint:
	.venv/bin/ruff check svc tests bench
	.venv/bin/ruff format --check svc tests bench
	.venv/bin/mypy

pytest:
	.venv/bin/pytest -p no:cacheprovider

nodetest:
	@if [ -d frontend/test ]; then cd frontend && node --test test/; fi

bench:
	scripts/setup --dev
	.venv/bin/python bench/stream_bench.py
