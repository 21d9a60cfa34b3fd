"""What the container suite uses: the tags it builds, the build (the ``image`` package, product code) and the image
run hardened on loopback ports (``harness.container``, shared with the benchmark)."""

from __future__ import annotations

from harness.container import TEST_IMAGE, Container, http_get, run_container, wait_ready
from harness.docker import DOCKER, docker
from image.base import REPO, configured_base
from image.build import BuiltImage, build_image
from image.docker import engine_problem, image_size

__all__ = [
    "DOCKER",
    "ML_TEST_TAG",
    "REPO",
    "TEST_TAG",
    "BuiltImage",
    "Container",
    "build_image",
    "configured_base",
    "docker",
    "engine_problem",
    "http_get",
    "image_size",
    "run_container",
    "wait_ready",
]

TEST_TAG = TEST_IMAGE
ML_TEST_TAG = f"{TEST_IMAGE}-ml"
