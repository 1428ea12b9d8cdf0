"""The wheel carries the migrations and the browser front end as package data.

They live at the repository's top level (`migrations/`, `frontend/`), where a checkout and
an editable install read them; a built wheel copies them into `svc/_data/`, where
`svc.resource_dir` finds them through importlib.resources. Everything else is in
pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# The front end's runtime files only: its tests, npm and TypeScript set-up stay behind.
_FRONTEND_SKIP = shutil.ignore_patterns(
    "test", "node_modules", "package.json", "package-lock.json", "tsconfig.json", "*.md"
)


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the repository's folders
            return
        data = Path(self.build_lib) / "svc" / "_data"
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(ROOT / "migrations", data / "migrations")
        shutil.copytree(ROOT / "frontend", data / "frontend", ignore=_FRONTEND_SKIP)


setup(cmdclass={"build_py": BuildWithData})
