"""Exports: a job written to one file in the background, then downloaded (with Range).

    model.py     the export record kept in the job store, and its checkpoint (pure)
    ranges.py    Range / If-Range evaluation (pure)
    formats.py   the file formats: gzip members of NDJSON, CSV files zipped at the end
    typed.py     what xlsx and Parquet share: staged rows, each column's declared type
    xlsx.py      a workbook, a sheet per domain (XlsxWriter in constant-memory mode)
    parquet.py   one domain as a typed Parquet file (pyarrow, the optional extra)
    registry.py  each format's writer; the requests a server can take
    storage.py   where finished files live: the local directory or S3 (obstore)
    runner.py    the background writer: queue, lease, checkpoints, resume, purge
    responses.py the file response: Content-Length, ETag, single ranges, HEAD

The design and its guarantees are in docs/exports.md.
"""
