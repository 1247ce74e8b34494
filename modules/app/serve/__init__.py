"""The animation service (serve.py, ``fomm-serve``): an HTTP API over warm models, with a
durable job store on disk, limits for hostile uploads, and Ray Serve to scale out
(docs/serve.md)."""
