"""The HTTP face: the Starlette app and its routes, streamed responses, the h11 protocol
with its limits, and the OpenAPI document. Everything here speaks HTTP; the work is done
by `svc.engine` and `svc.exports`.
"""
