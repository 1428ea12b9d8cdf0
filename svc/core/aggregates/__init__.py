"""Declared aggregations (domain file), computed per chunk by the database and merged here.

One concern in two halves, side by side (pure: no I/O):

- `queries`: the SQL of one chunk: one grouped query for every count, sum and min_max of a
  domain (`aggregate_sql`, shaped by `aggregate_shape`), one query per distinct count
  (`distinct_sql`);
- `merging`: a `DomainMerger` reads those rows back by the same shape, folds the chunks
  and gives the wire structs; and how the outcome is stored with the job.

`svc.engine.reader` only runs the queries, chunk by chunk, and feeds the merger.
"""
