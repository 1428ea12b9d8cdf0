"""The pure core: no I/O, no server, no database driver (enforced by tests/test_architecture.py).

Tokens, domain files, filters, the SQL text of pages and aggregates, aggregate merging,
CSV cells, gzip lines, the LRU, rate-limit buckets and admission. Every other room builds
on these; they import only each other, `svc.protocol` and `svc.errors`.
"""
