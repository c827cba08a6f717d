"""The catalog's write path, in three parts: `reader` (descriptor sources into candidates),
`planner` (candidates against the catalog: what to insert, update, remove, refuse) and `writer`
(a plan into the tables, in the caller's transaction). Only `engines` knows which database it is
talking to. `catalog.services` composes them into the registration services."""
