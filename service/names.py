"""Names that several modules — and the tests, the bench and the chart's probes — must agree on, each defined once."""

from __future__ import annotations

# Probe paths. Liveness is answered without Flask (the worker's loop, or ``LivenessShortcut``); every probe is kept
# out of the RED metrics, the traces and the default access log.
LIVEZ = "/livez"
HEALTHZ = "/healthz"  # liveness under its older name
READYZ = "/readyz"
STARTUPZ = "/startupz"
LIVENESS_PATHS = (LIVEZ, HEALTHZ)
PROBE_PATHS = (*LIVENESS_PATHS, READYZ, STARTUPZ)

# The text-analysis endpoints: each name is the view's name, the `endpoint` label of the analysis metrics and the
# last segment of its path.
API_PREFIX = "/api/v1"
ANALYZE = "analyze"
WORDCOUNT = "wordcount"
TOKENIZE = "tokenize"
ANALYSIS_ENDPOINTS = (ANALYZE, WORDCOUNT, TOKENIZE)
ANALYSIS_PATHS = tuple(f"{API_PREFIX}/{name}" for name in ANALYSIS_ENDPOINTS)
ANALYZE_PATH = f"{API_PREFIX}/{ANALYZE}"
JOBS_PATH = f"{API_PREFIX}/jobs"
# Request bodies are read, and analysed, in slices of this size.
CHUNK_BYTES = 16 * 1024
# The route label of a request no route matched (404, and 405 on an unknown method).
UNMATCHED_ROUTE = "unmatched"

# What the factory keeps on ``app.extensions``.
SETTINGS_EXTENSION = "flask_svc.settings"
LIFECYCLE_EXTENSION = "flask_svc.lifecycle"
METRICS_EXTENSION = "flask_svc.metrics"
TRACING_EXTENSION = "flask_svc.tracing"
# (A feature's own keys are in its web layer: service.batch.web.views, service.inference.web.)
MODEL_IDENTITY_EXTENSION = "flask_svc.model_identity"  # its name, version and sha256, for /readyz and /version
# The WSGI environ key where the app leaves the access line's fields (route, request and trace ids) for gunicorn.
ACCESS_ENVIRON_KEY = "flask_svc.access"

# What a pod with a mounted ServiceAccount token finds here: its token, the cluster CA and its namespace.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
