"""Building the container image where no registry is reachable: ``python -m image build --image NAME[:TAG]``.

The Dockerfile is the recipe; this package feeds it. It makes a stand-in for python:3.12-slim from Debian packages
(debootstrap + docker import, cached as a local image), downloads the locked wheels on the host into a wheelhouse,
serves them on loopback and hands pip a pip.conf as a BuildKit secret. Callers: `make e2e` (tests/e2e/run.sh), the
local cluster's skaffold builder (cluster/skaffold-build.sh) and the container tests (tests/container).

    base.py       the stand-in base image (or the real one named by FLASK_SVC_TEST_BASE_IMAGE)
    wheelhouse.py the locked wheels for the base's Python, and the loopback server for them
    build.py      `docker build` of the Dockerfile on that base, pip fed from the wheelhouse
    docker.py     the Docker client as all of them run it
"""
