"""Command line: `python -m svc` / `trace-svc` with serve, demo-data, migrate and fetch."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from svc.config import SETTINGS, Settings


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for s in SETTINGS:
        flag = s.flag
        parser.add_argument(
            flag, dest=s.attr, default=None, metavar=s.env, help=f"{s.help} [env {s.env}]"
        )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for s in SETTINGS:
        raw = getattr(args, s.attr, None)
        if raw is not None:
            try:
                overrides[s.attr] = s.parse(raw)
            except ValueError as exc:
                raise SystemExit(f"{s.flag}: {exc}") from exc
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trace-svc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--graceful-seconds",
        type=float,
        default=30.0,
        help="how long a drain waits for streams to end",
    )
    _add_settings_flags(serve)

    demo = sub.add_parser("demo-data", help="build the embedded demo database")
    demo.add_argument("--cids", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file (default: demo.sqlite3 in the data directory)",
    )
    demo.add_argument("--data-dir", dest="data_dir", default=None)
    demo.add_argument(
        "--db-url",
        dest="db_url",
        default=None,
        help="oracle://user:password@host:port/service: load the demo rows into Oracle "
        "(migrating first) instead of building the SQLite file",
    )

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument("--db-url", dest="db_url", default=None)

    fetch = sub.add_parser("fetch", help="download a job's stream, resuming after drops")
    fetch.add_argument("job_url", help="http://host:port/api/trace/job/JOB_ID")
    fetch.add_argument("-o", "--output", type=Path, required=True)
    fetch.add_argument("--api-key", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        from svc.server import serve

        serve(_settings(args), args.host, args.port, args.graceful_seconds)
        return 0
    if args.command == "demo-data":
        from svc.demo import build_demo_database

        url = args.db_url
        if url and url.startswith("oracle://"):
            from svc.sources.oracle import load_demo_oracle

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
        from svc.migrate import migrate

        url = _settings(args).resolved_db_url()
        applied = migrate(url)
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
        return 0
    if args.command == "fetch":
        from svc.fetch import fetch

        return fetch(args.job_url, args.output, api_key=args.api_key)
    return 2


if __name__ == "__main__":
    sys.exit(main())
