"""Behind the shipped nginx config, per-address limits see the client's address, not nginx's.

nginx adds the client's address to X-Forwarded-For; the service believes that header only
from the proxies named in TRACE_FORWARDED_ALLOW_IPS (`serve --forwarded-allow-ips`). The
creation rate (one job, then 429, per address with keys off) tells whose address counted:
two clients behind nginx get a job each when nginx is trusted, and share one bucket when it
is not (every request then comes from nginx's own address).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import all_cids
from tests.support.nginx import Nginx, nginx_binary
from tests.support.servers import free_port, start_server


@pytest.mark.parametrize(
    ("trusted", "separate"), [("127.0.0.1", True), ("192.0.2.1", False)], ids=["trusted", "not"]
)
def test_the_client_address_behind_nginx(
    small_demo_db: Path, tmp_path: Path, trusted: str, separate: bool
) -> None:
    nginx_binary()
    port = free_port()
    env = {
        "TRACE_FORWARDED_ALLOW_IPS": trusted,
        "TRACE_JOB_CREATE_RATE": "1",
        "TRACE_JOB_CREATE_BURST": "1",
    }
    srv = start_server(tmp_path / "data", small_demo_db, env, port=port)
    nginx = Nginx(tmp_path / "nginx", port)
    try:
        body = {"container_ids": all_cids(small_demo_db)[:5]}

        def create(client_address: str) -> int:
            headers = {"X-Forwarded-For": client_address}
            url = f"{nginx.url}/api/trace/job"
            return httpx.post(url, json=body, headers=headers, timeout=10).status_code

        assert create("198.51.100.7") == 201
        assert create("198.51.100.7") == 429  # that client's bucket is empty
        assert create("203.0.113.9") == (201 if separate else 429)
    finally:
        nginx.stop()
        srv.stop()
