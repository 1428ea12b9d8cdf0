"""Every route of the service, in one table: its name, path and methods.

The app's route list, the `links` of a job, the links of an export's status and the
OpenAPI operations all read it, so a URL is written once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # a Starlette path: `{job_id}` is a path parameter
    method: str = "GET"  # a GET route answers HEAD too

    def url(self, **params: str) -> str:
        return self.path.format(**params)


HEALTHZ = Endpoint("healthz", "/healthz")
READYZ = Endpoint("readyz", "/readyz")
METRICS = Endpoint("metrics_text", "/metrics")
OPENAPI_JSON = Endpoint("openapi_json", "/openapi.json")
DOCS = Endpoint("docs", "/docs")
DOMAINS = Endpoint("list_domains", "/api/domains")
DEMO_CIDS = Endpoint("demo_cids", "/api/demo/cids")
CREATE_JOB = Endpoint("create_job", "/api/trace/job", "POST")
JOB = Endpoint("describe_job", "/api/trace/job/{job_id}")
STREAM = Endpoint("stream", "/api/trace/job/{job_id}/stream")
RESULT = Endpoint("result_page", "/api/trace/job/{job_id}/result")
EXPORT_CSV = Endpoint("export_csv", "/api/trace/job/{job_id}/export.csv")
CREATE_EXPORT = Endpoint("create_export", "/api/trace/job/{job_id}/exports", "POST")
EXPORT = Endpoint("export_status", "/api/trace/job/{job_id}/exports/{export_id}")
EXPORT_FILE = Endpoint("export_file", "/api/trace/job/{job_id}/exports/{export_id}/file")
AGGREGATION = Endpoint("job_aggregation", "/api/trace/job/{job_id}/aggregation")
FRONTEND = Endpoint("frontend", "/")  # the front end's static files, mounted, not routed

# In the order the app matches them.
ROUTED = (
    HEALTHZ,
    READYZ,
    METRICS,
    OPENAPI_JSON,
    DOCS,
    DOMAINS,
    DEMO_CIDS,
    CREATE_JOB,
    JOB,
    STREAM,
    RESULT,
    EXPORT_CSV,
    CREATE_EXPORT,
    EXPORT,
    EXPORT_FILE,
    AGGREGATION,
)
