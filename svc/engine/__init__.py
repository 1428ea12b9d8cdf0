"""The service without HTTP: jobs, positions, pages, totals and aggregations (`service`),
the reader and its batches, the one domain walk, the NDJSON lines and the CSV download.
"""
