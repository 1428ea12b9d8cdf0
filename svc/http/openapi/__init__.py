"""The HTTP contract: the OpenAPI 3.1 document served at /openapi.json, and /docs.

Every route and its parameters are described once, in `operations` (each an `Operation`
of `model`); `document` generates the schemas from the msgspec structs of `svc.protocol`.
A test fails when a route of the app is missing here. `/docs` renders this same document
as one HTML page (`page`).
"""

from svc.http.openapi.document import all_errors, components, document
from svc.http.openapi.model import Operation, Param
from svc.http.openapi.operations import operations
from svc.http.openapi.page import render_docs

__all__ = [
    "Operation",
    "Param",
    "all_errors",
    "components",
    "document",
    "operations",
    "render_docs",
]
