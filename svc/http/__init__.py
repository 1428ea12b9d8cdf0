"""The HTTP face. Everything here speaks HTTP; the work is done by `svc.engine` and
`svc.exports`.

- `app`: the Starlette app (wiring, middleware, errors to problem+json); `routes/`: the
  handlers by resource; `paths` and `limits`: the one table of routes and of request
  limits that the handlers, the links and the OpenAPI document read;
- `params` (what a request says, checked), `problems` (problem+json), `wire` (jobs and
  exports as the wire shows them), `auth` (API keys), `app_state`;
- `responses`: streamed responses; `h11`: the protocol with its limits; `openapi/`: the
  document and its /docs page.
"""
