"""Debian's Chromium for browser tests and benchmarks (never a browser Playwright downloads)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root on a machine with no outside network: no sandbox, no GPU, and none of
# Chromium's background connections (they are refused here, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
