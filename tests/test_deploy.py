"""compose.yaml, the Dockerfile and nginx.conf: consistent with each other and the code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from svc.config import SETTINGS, Settings
from svc.sources import oracle as ora

# --- compose.yaml, Dockerfile and nginx.conf: consistent with each other and the code ------

ROOT = Path(__file__).resolve().parent.parent


def _expand(value: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} interpolation, with the defaults (or `env`)."""
    env = env or {}
    return re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), value
    ).replace("$$", "$")


def test_compose_stack_is_consistent() -> None:
    import yaml  # PyYAML is in the dev extra: a missing one fails here, it does not skip

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"oracle", "redis", "setup", "trace-a", "trace-b", "nginx"}

    oracle = services["oracle"]
    assert oracle["image"].startswith("gvenzl/oracle-free:") and "faststart" in oracle["image"]
    assert "healthcheck.sh" in " ".join(oracle["healthcheck"]["test"])
    init = next(v for v in oracle["volumes"] if "initdb.d" in v).split(":")[0]
    scripts = list((ROOT / init).iterdir())
    assert scripts and all(p.stat().st_mode & 0o111 for p in scripts if p.suffix == ".sh")
    marker = re.search(r"test -f (\S+)", " ".join(oracle["healthcheck"]["test"]))
    assert marker and any(marker.group(1) in p.read_text() for p in scripts)
    grants = "".join(p.read_text() for p in scripts)
    for needed in ("DBMS_FLASHBACK", "V_\\$SQL_PLAN", "V_\\$SESSION", "ALTER SYSTEM"):
        assert needed in grants
    app_user = oracle["environment"]["APP_USER"]
    app_password = _expand(oracle["environment"]["APP_USER_PASSWORD"])

    known = {s.env for s in SETTINGS}
    for name in ("setup", "trace-a", "trace-b"):
        env = {k: _expand(str(v)) for k, v in services[name]["environment"].items()}
        assert {k for k in env if k.startswith("TRACE_")} <= known, name
        url = ora.parse_url(env["TRACE_DB_URL"])
        assert (url.user, url.password, url.host, url.port) == (
            app_user,
            app_password,
            "oracle",
            1521,
        )
        assert url.service == "FREEPDB1"
        assert env["TRACE_REDIS_URL"].startswith("redis://redis:")
        settings = Settings.from_env(env)  # every value parses
        assert settings.oracle_pool_min == settings.oracle_pool_max  # a fixed-size pool
        assert services[name]["build"] == "."
    assert services["trace-a"] == services["trace-b"]
    assert services["trace-a"]["depends_on"]["setup"]["condition"] == (
        "service_completed_successfully"
    )
    setup = " ".join(services["setup"]["command"])
    assert "trace-svc migrate" in setup and "demo-data" in setup and "--db-url" in setup

    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    nginx = services["nginx"]
    assert any(v.startswith("./deploy/nginx.conf:") for v in nginx["volumes"])
    upstreams = set(re.findall(r"^\s*server\s+([\w-]+):(\d+)", nginx_conf, re.M))
    dockerfile = (ROOT / "Dockerfile").read_text()
    port = re.search(r"^EXPOSE (\d+)", dockerfile, re.M)
    assert port and upstreams == {("trace-a", port.group(1)), ("trace-b", port.group(1))}
    assert re.search(r"proxy_buffering\s+off;", nginx_conf)
    body = re.search(r"client_max_body_size\s+(\d+)m;", nginx_conf)
    assert body and int(body.group(1)) * 2**20 >= Settings().max_cids * 80 + 65536
    assert '"trace-svc", "serve"' in dockerfile and "0.0.0.0" in dockerfile
