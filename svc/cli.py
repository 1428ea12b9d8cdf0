"""Command line: `python -m svc` / `trace-svc` with serve, demo-data, migrate and fetch."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from svc import __version__
from svc.config import SETTINGS, Settings


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for s in SETTINGS:
        flag = s.flag
        parser.add_argument(
            flag, dest=s.attr, default=None, metavar=s.env, help=f"{s.doc} [env {s.env}]"
        )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for s in SETTINGS:
        raw = getattr(args, s.attr, None)
        if raw is not None:
            try:
                overrides[s.attr] = s.read(raw, s.flag)
            except ValueError as exc:
                raise SystemExit(str(exc)) from exc
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trace-svc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--graceful-seconds",
        type=float,
        default=30.0,
        help="how long a drain waits for streams to end (default %(default)s)",
    )
    serve.add_argument(
        "--unready-seconds",
        type=float,
        default=1.0,
        help="on SIGTERM, how long /readyz answers 503 before the listener closes "
        "(default %(default)s)",
    )
    _add_settings_flags(serve)

    demo = sub.add_parser("demo-data", help="build the embedded demo database")
    demo.add_argument(
        "--cids", type=int, default=Settings().demo_cids, help="containers (default %(default)s)"
    )
    demo.add_argument(
        "--seed", type=int, default=42, help="random seed of the rows (default %(default)s)"
    )
    demo.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file (default: demo.sqlite3 in the data directory)",
    )
    demo.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        help=f"where demo.sqlite3 goes without --db (default {Settings().data_dir})",
    )
    demo.add_argument(
        "--db-url",
        dest="db_url",
        default=None,
        help="oracle://user:password@host:port/service: load the demo rows into Oracle "
        "(migrating first) instead of building the SQLite file",
    )

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument(
        "--db-url",
        dest="db_url",
        default=None,
        help="sqlite:///path or oracle://user:password@host:port/service "
        "(default: TRACE_DB_URL, else the demo database in the data directory)",
    )

    fetch = sub.add_parser(
        "fetch",
        help="download a job's stream, resuming after drops (rerun to resume)",
        description="Exit codes: 0 complete, 1 permanent failure, 2 retries exhausted "
        "(run again to resume), 130 interrupted (run again to resume).",
    )
    fetch.add_argument("job_url", help="http://host:port/api/trace/job/JOB_ID")
    fetch.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="the NDJSON file; it is also the checkpoint: run again to resume (required)",
    )
    fetch.add_argument(
        "--api-key", default=None, help="sent as Authorization: Bearer (default: none)"
    )
    fetch.add_argument(
        "--records-only",
        action="store_true",
        help='JSON Lines of records, each with "_domain" first (checkpoint: OUTPUT.since)',
    )
    fetch.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTPUT when it holds another job's download (default: refuse)",
    )
    fetch.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each HTTP request (default: progress only)",
    )
    return parser


# What `serve`, `demo-data` and `migrate` import beyond the client's base install.
_SERVER_MODULES = ("starlette", "uvicorn", "redis", "apsw")
EXIT_USAGE = 2


def _missing_server_extra(command: str) -> bool:
    """The client-only install: say which extra to install, in one line, before any file."""
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"trace-svc {command} needs the server extra (missing: {', '.join(missing)}): "
            "pip install 'PATH[server]', PATH the checkout or the wheel",
            file=sys.stderr,
        )
    return bool(missing)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "fetch" and _missing_server_extra(args.command):
        return EXIT_USAGE
    if args.command == "serve":
        from svc.logs import configure

        settings = _settings(args)
        configure(settings.log_format)
        if settings.workers > 1:  # before svc.metrics is imported (see svc.run.workers)
            from svc.run.workers import serve_workers

            return serve_workers(
                settings, args.host, args.port, args.graceful_seconds, args.unready_seconds
            )
        from svc.run.server import serve

        return serve(settings, args.host, args.port, args.graceful_seconds, args.unready_seconds)
    # fetch: the libraries' INFO lines (one per httpx request) would break the progress bars
    _basic_logging(logging.INFO if args.command != "fetch" or args.verbose else logging.WARNING)
    if args.command == "demo-data":
        from svc.sources.demo import build_demo_database

        url = args.db_url
        if url and url.startswith("oracle://"):
            from svc.sources.demo import load_demo_oracle

            counts = load_demo_oracle(url, cids=args.cids, seed=args.seed)
            print(f"loaded the Oracle demo tables: {counts}")
            return 0
        if url and not url.startswith("sqlite:///"):
            raise SystemExit("--db-url must be oracle://... or sqlite:///path")
        settings = _settings(args)
        path = args.db or (Path(url.removeprefix("sqlite:///")) if url else settings.demo_db_path)
        counts = build_demo_database(path, cids=args.cids, seed=args.seed)
        print(f"built {path}: {counts}")
        return 0
    if args.command == "migrate":
        from svc.sources.migrate import migrate

        url = _settings(args).resolved_db_url()
        applied = migrate(url)
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
        return 0
    if args.command == "fetch":
        from svc.client.fetch import fetch

        return fetch(
            args.job_url,
            args.output,
            api_key=args.api_key,
            records_only=args.records_only,
            overwrite=args.overwrite,
        )
    return 2


def _basic_logging(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    sys.exit(main())
