"""The token secret at start-up: the configured ones, or one generated in the data directory.

Made here, when the service starts, not when settings are read: reading configuration
(`trace-svc serve --help`, tests, the CLI's other commands) writes nothing.
"""

from __future__ import annotations

import os
import secrets

from svc.config import Settings


def token_secrets(settings: Settings) -> list[str]:
    """The configured secrets, or the data directory's generated one, made on first start.

    A generated secret is only safe on a single node: replicas that share jobs through
    Redis must share a configured TRACE_SECRET, so without one they refuse to start.
    """
    if settings.secrets:
        return settings.secrets
    if settings.redis_url:
        raise ValueError("TRACE_SECRET is required when TRACE_REDIS_URL is set")
    path = settings.secret_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
    return [path.read_text().strip()]
