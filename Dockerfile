# flask-svc image: a builder stage makes the virtualenv from the hashed lock; the runtime stage gets only the
# virtualenv and service/. Build with BuildKit (DOCKER_BUILDKIT=1 or buildx); see `make image`.
#
# Two variants: the default (the last stage) has no numpy, scipy or scikit-learn; `--target ml` (tagged `-ml`) adds
# them, from requirements-ml.lock, and the Iris model trained during the build, served from /app/model.
#
# BASE_IMAGE: any image with the interface of python:3.12-slim (python, python -m venv, CA certificates, sh,
# groupadd/useradd), e.g. a digest pin (python:3.12-slim@sha256:...) or the same image from a private mirror.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS builder

# Pip's own variables, for a private index or mirror. They exist only in this stage, so they never reach the
# final image's history. Credentials and CA bundles go in as BuildKit secrets instead (see below).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

# Dependencies before the source, so a code change reuses this layer. No .pyc here: the runtime stage compiles
# what start-up needs (see there), which keeps rarely used modules from doubling their size in the image.
# Optional secrets: pip_conf (a pip.conf: index, credentials, find-links) and pip_ca (a CA bundle, e.g. for a
# TLS-intercepting proxy). They are mounted for this one command and leave no trace in any layer.
# The kubernetes client ships an asyncio twin of its API (kubernetes/aio, about 70 MB of generated code): the batch
# runner uses the synchronous one, so the twin is removed, and with it what only the twin imports (aiohttp and its
# helpers, 12 MB), listed in /tmp/pruned for the ml stage. Also never imported: tzdata (python-dateutil's fallback
# for named time zones; the client parses only UTC timestamps), the tests, type stubs and C sources some wheels
# carry, pydantic's v1 compatibility package and mypy plugin, and the long descriptions (READMEs, changelogs) in the
# packages' METADATA: the header fields that importlib.metadata reads stay.
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=secret,id=pip_conf \
    --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi; \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: --no-compile \
        -r /tmp/requirements.lock \
    && /opt/venv/bin/pip uninstall --yes aiohttp aiohttp-retry aiohappyeyeballs aiosignal attrs frozenlist multidict \
        propcache yarl tzdata \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel \
    && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
    && rm -rf "$site"/kubernetes/aio "$site"/websocket/tests "$site"/regex/tests "$site"/certifi/tests \
        "$site"/*-stubs "$site"/pydantic/v1 "$site"/pydantic/mypy.py \
    && find "$site" \( -name '*.pyi' -o -name '*.c' \) -delete \
    && /opt/venv/bin/python -c "import pathlib, sys; \
[p.write_text(p.read_text('utf-8').partition('\n\n')[0] + '\n', 'utf-8') \
for p in pathlib.Path(sys.argv[1]).glob('*.dist-info/METADATA')]" "$site" \
    && printf '%s\n' aiohttp aiohttp_retry aiohappyeyeballs aiosignal attr attrs frozenlist multidict propcache yarl \
        tzdata kubernetes > /tmp/pruned \
    && rm /tmp/requirements.lock

# The app code: owned by root, readable (not writable) by everyone else, whatever the umask of the checkout.
COPY service/ /app/service/
RUN chmod -R u=rwX,go=rX /app

# The kubernetes client's generated API and models are 34 MB of Python source (the client loads a module only when
# first used), and it is the only user of dateutil, yaml, oauthlib, requests_oauthlib, websocket and durationpy.
# Zipped together and imported from the zip (Python's zipimport, found through a .pth file), they take under 5 MB;
# tracebacks still show their source. The modules the batch runner loads go in compiled too (unchecked-hash .pyc,
# valid whatever the zip's timestamps), so a batch pod does not compile them at each start. Left out: PyYAML's C
# loader (the client reads kubeconfig with the pure-Python safe_load) and the client's own tests; their RECORD files,
# which would list paths that no longer exist, go.
RUN PYTHONPATH=/app /opt/venv/bin/python -c "import os, py_compile, sys, sysconfig, zipfile; \
import service.batch.kube; \
site = sysconfig.get_paths()['purelib']; \
pkgs = [os.path.join(site, p) for p in ('kubernetes', 'dateutil', 'yaml', 'oauthlib', 'requests_oauthlib', 'websocket', 'durationpy')]; \
loaded = {m.__file__ for m in list(sys.modules.values()) if (getattr(m, '__file__', None) or '').startswith(tuple(p + os.sep for p in pkgs))}; \
files = sorted(os.path.join(r, f) for p in pkgs for r, ds, fs in os.walk(p) for f in fs \
    if '__pycache__' not in r and not f.endswith(('_test.py', '.so', '.pyi'))); \
z = zipfile.ZipFile(os.path.join(site, 'kubernetes.zip'), 'w', zipfile.ZIP_DEFLATED, compresslevel=9, strict_timestamps=False); \
[z.write(f, os.path.relpath(f, site)) for f in files]; \
[z.write(py_compile.compile(f, cfile=f + 'c', doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH), os.path.relpath(f, site) + 'c') for f in sorted(loaded) if f.endswith('.py')]; \
z.close(); open(os.path.join(site, 'kubernetes.pth'), 'w').write('kubernetes.zip\\n')" \
    && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
    && for gone in kubernetes dateutil yaml _yaml oauthlib requests_oauthlib websocket durationpy; do \
        rm -rf "${site:?}/$gone"; done \
    && for dist in kubernetes python_dateutil pyyaml oauthlib requests_oauthlib websocket_client durationpy; do \
        rm -f "$site/$dist"-*.dist-info/RECORD; done \
    && printf '%s\n' dateutil yaml _yaml oauthlib requests_oauthlib websocket durationpy >> /tmp/pruned \
    && PYTHONPATH=/app /opt/venv/bin/python -c "import kubernetes.client, kubernetes.config, yaml, service.batch.kube; \
assert '.zip' in kubernetes.client.__file__ and not yaml.__with_libyaml__"

FROM ${BASE_IMAGE} AS runtime

# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin app

# APP_CODE_OWNER stays root (the app cannot modify its own code) except in skaffold's dev builds, where file
# sync has to write into /app/service; the ci profile and releases keep the default.
ARG APP_CODE_OWNER=0:0
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=${APP_CODE_OWNER} /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
# The app user cannot write .pyc files (and the root filesystem may be read-only), and the official python
# images ship the standard library without them, so every worker would compile its imports at each start.
# Compile here, as root, the modules start-up imports (standard library, venv, app; the OpenTelemetry SDK that a
# traced worker loads; and the Kubernetes client the batch runner loads: 3 MB of .pyc a batch-enabled pod would
# otherwise compile in memory at every start; what the master's metrics port and each worker's metrics import once
# they start) plus all of service/: importing the app also proves the image can load it.
RUN python -c "import compileall, os, sys; \
import gunicorn.app.wsgiapp, gunicorn.arbiter, gunicorn.workers.gthread, service.app, service.logs, service.batch.kube, service.tracing_sdk; \
import prometheus_client.multiprocess, prometheus_flask_exporter.multiprocess, flask.views; \
loaded = sorted({m.__file__ for m in list(sys.modules.values()) if (getattr(m, '__file__', None) or '').endswith('.py')}); \
ok = all([compileall.compile_file(f, quiet=2) for f in loaded if os.path.isfile(f)]) and compileall.compile_dir('/app/service', quiet=2); \
sys.exit(not ok)"

USER 10001:10001
EXPOSE 8080 9797

# Last, so a new commit or build time changes only metadata, not layers.
ARG BASE_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="flask-svc" \
      org.opencontainers.image.description="Flask on gunicorn, packaged for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENV FLASK_SVC_VERSION=${VERSION} \
    FLASK_SVC_GIT_COMMIT=${REVISION} \
    FLASK_SVC_BUILD_DATE=${CREATED}

# gunicorn is PID 1: it handles SIGTERM as a graceful drain and reaps its own workers.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "--config", "python:service.server.gunicorn_conf"]

# The model-serving packages, beyond those already in the virtualenv, installed apart with the base image's pip.
FROM builder AS ml-deps
COPY requirements-ml.lock /tmp/requirements-ml.lock
RUN --mount=type=secret,id=pip_conf \
    --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi; \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    python -m pip install --require-hashes --no-deps --only-binary=:all: --no-compile --break-system-packages \
        --target /opt/ml -r /tmp/requirements-ml.lock \
    && for installed in /opt/venv/lib/python3*/site-packages/* $(cat /tmp/pruned); do \
        rm -rf "/opt/ml/${installed##*/}" "/opt/ml/${installed##*/}"-*.dist-info; done \
    && rm -rf /opt/ml/*-stubs \
    && rm -rf /opt/ml/bin /tmp/requirements-ml.lock

# The `-ml` variant: the default image plus the model-serving packages (one layer) and the trained model.
FROM runtime AS ml
USER 0:0
COPY --from=ml-deps /opt/ml /opt/ml
ENV PYTHONPATH=/opt/ml \
    FLASK_SVC_MODEL_PATH=/app/model/iris.skops
# Train at build (deterministic, no download: the data ships in scikit-learn), then compile what loading and
# serving the model import, as the default stage does for start-up.
RUN python -m service.inference.train /app/model/iris.skops \
    && chmod -R u=rwX,go=rX /app/model \
    && python -c "import compileall, sys; \
import numpy, sklearn, skops.io, service.inference.loading, service.inference.web.views; \
from service.inference.loading import ModelSource, load; load(ModelSource('/app/model/iris.skops')); \
loaded = sorted({m.__file__ for m in list(sys.modules.values()) if (getattr(m, '__file__', None) or '').startswith('/opt/ml/')}); \
sys.exit(not all([compileall.compile_file(f, quiet=2) for f in loaded]))"
USER 10001:10001

# The default target stays last: `docker build` without --target builds the image without model serving.
FROM runtime
