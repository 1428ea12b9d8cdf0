"""Idle read timeout on a real socket: heartbeats keep a quiet stream alive; silence longer
than `idle_timeout` drops the connection and the client resumes with `since`."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from svc.client import TraceClient
from tests.support.scripted_stream import JOB, body, expected_records, script


def _serve(listener: socket.socket, requests: list[str]) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_answer, args=(conn, requests), daemon=True).start()


def _answer(conn: socket.socket, requests: list[str]) -> None:
    try:
        with conn:
            request = conn.recv(65536).decode()
            requests.append(request.split("\r\n", 1)[0])
            since = None
            if "since=" in request.split(" ")[1]:
                since = request.split(" ")[1].split("since=")[1].replace("%3A", ":")
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
                b"connection: close\r\n\r\n"
            )
            lines = script(since)
            if since is None:
                conn.sendall(body(lines[:3]))  # meta, domain_start, history 1
                for _ in range(10):  # 1 s of heartbeats only: not idle
                    time.sleep(0.1)
                    conn.sendall(b'{"type":"heartbeat"}\n')
                conn.sendall(body(lines[3:6]))  # up to history 2
                time.sleep(4)  # silence: the client gives up on this connection
            else:
                conn.sendall(body(lines))
    except OSError:
        pass  # the client dropped the connection


@pytest.mark.slow
def test_idle_timeout_resumes_and_heartbeats_keep_alive() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[str] = []
    threading.Thread(target=_serve, args=(listener, requests), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        started = time.monotonic()
        with TraceClient(url, idle_timeout=0.5, sleep=lambda s: None) as client:
            records = list(client.iter_records(JOB))
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert records == expected_records()
    assert len(requests) == 2 and "since=history%3A2" in requests[1]
    # 1 s of heartbeats, then 0.5 s of silence; the server would have been silent for 4 s
    assert 1.4 < elapsed < 3.5
