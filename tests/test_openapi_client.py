"""The OpenAPI document is usable whole by a client generator: openapi-python-client
generates a package from the live /openapi.json (in a temporary directory), and its calls
create a job, read a result page and the aggregations of the live service, all parsed."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support import DOMAINS, sql_truth
from tests.support.servers import ServerProcess

PACKAGE = "trace_generated_client"
# Generators warn of what they leave out; the stream is NDJSON, which a request/response
# client cannot read (it is documented as `Line`, one line's schema).
ALLOWED_WARNING = "GET /api/trace/job/{job_id}/stream"


@pytest.fixture(scope="module")
def generated(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The generator's output (its warnings); the package importable as PACKAGE."""
    work = tmp_path_factory.mktemp("generated")
    spec = work / "openapi.json"
    spec.write_bytes(httpx.get(f"{server.url}/openapi.json").content)
    config = work / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: only the generator is tested
    tool = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(
        [str(tool), "generate", "--path", str(spec), "--meta", "none"]
        + ["--config", str(config), "--output-path", str(work / PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(work))
    try:
        yield run.stdout + run.stderr
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generator_keeps_every_schema_and_every_error_response(generated: str) -> None:
    warnings = [
        block for block in generated.split("WARNING")[1:] if ALLOWED_WARNING not in block[:200]
    ]
    assert not warnings, "\n".join(warnings)
    assert "Unable to" not in generated
    models = _module("models")
    for name in ("Page", "Group", "CountAggregate", "SumAggregate", "Records", "Problem"):
        assert hasattr(models, name), f"the generator dropped {name}"


def test_generated_calls_are_parsed_against_the_live_service(
    generated: str, server: ServerProcess, demo_cids: list[str], demo_db: Path
) -> None:
    client_module = _module("client")
    models: Any = _module("models")
    with client_module.Client(base_url=server.url, raise_on_unexpected_status=True) as client:
        _calls(client, models, demo_cids[:40], demo_db)


def _calls(client: Any, models: Any, cids: list[str], demo_db: Path) -> None:
    create_job: Any = _module("api.default.create_job")
    result_page: Any = _module("api.default.result_page")
    job_aggregation: Any = _module("api.default.job_aggregation")
    describe_job: Any = _module("api.default.describe_job")

    created = create_job.sync(client=client, body=models.JobRequest(container_ids=cids))
    assert isinstance(created, models.JobCreated), created
    assert created.cid_count == len(cids)
    job_id = created.job_id

    domain = models.DomainName("history")
    page = result_page.sync(job_id, client=client, domain=domain, limit=5)
    assert isinstance(page, models.Page), page
    truth = sql_truth(demo_db, cids, ["history"])["history"]
    key = DOMAINS["history"].columns.index("CONTAINERID")
    assert page.total == len(truth) and len(page.data) == 5 < len(truth)
    assert page.data[0].to_dict()["CONTAINERID"] == truth[0][key]
    arrays = result_page.sync(
        job_id,
        client=client,
        domain=domain,
        limit=5,
        since=page.next_,
        format_=models.ResultPageFormat.ARRAYS,
    )
    assert isinstance(arrays, models.Page) and arrays.columns is not None
    assert arrays.data[0][arrays.columns.index("CONTAINERID")] == truth[5][key]

    aggregation = job_aggregation.sync(job_id, client=client)
    assert isinstance(aggregation, models.JobAggregation), aggregation
    history = aggregation.aggregations["history"]
    kinds = {type(a).__name__ for a in history.additional_properties.values()}
    assert "CountAggregate" in kinds, kinds
    assert aggregation.domains["history"].records == len(truth)

    described = describe_job.sync(job_id, client=client)
    assert isinstance(described, models.JobDescription) and described.job_id == job_id

    # An error response is a parsed Problem with its stable code.
    missing = describe_job.sync("no-such-job", client=client)
    assert isinstance(missing, models.Problem) and missing.code == models.ProblemCode.JOB_NOT_FOUND
