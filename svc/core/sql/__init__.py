"""The SQL text a source runs, and the binds that go with it (pure: no I/O, no driver).

A job's CIDs are sorted and cut into chunks of at most `plan.SLOTS` (Oracle caps IN lists
at 1000 binds). Rows are read in `(key, tie-break)` order, one chunk after another. A page
query binds only the chunk's CIDs from the last key on, padded with NULLs to a fixed
number of slots, so

- the IN list is the index access predicate: the database seeks each remaining CID in
  the key index and never revisits CIDs already sent (flat per-page cost, unlike the
  bare ``key > :k OR (key = :k AND rid > :r)`` form that scans from the start);
- the statement text never changes, so prepared-statement caches work;
- every comparison of tie-breaks (Oracle ROWIDs) happens in the database, never here.

The SQL text is shared by the dialects except for the row id's name, the row-limit clause,
Oracle's optional ``AS OF SCN`` snapshot clause and how a TIMESTAMP WITH TIME ZONE column
is read (Oracle: ``SYS_EXTRACT_UTC``, under a ``TRACE_UTC_<n>`` alias the source
recognises). Identifiers come from the validated domain file, quoted as configured.

- `dialects`: what differs between SQLite and Oracle, and the pieces every statement shares;
- `where`: a job's filter as predicates and binds, and the rows of one chunk it keeps;
- `pages`: the page, JSON page and totals statements;
- `plan`: the chunks, the last record's `Key`, and each statement's binds.

The per-chunk aggregate statements sit beside the merging of their rows, in
`svc.core.aggregates`.
"""
