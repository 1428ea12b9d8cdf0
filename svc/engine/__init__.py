"""The service without HTTP: jobs, pages and positions (`service`, `positions`), totals and
aggregations (`tallies`, computed once: `once`), the reader and its batches (`reader`,
`batches`, `json_batches`), the one domain walk (`walk`), the NDJSON lines (`ndjson`) and
the CSV download (`csv_download`). Names: docs/design.md#vocabulary.
"""
