"""``python -m service``: gunicorn with the embedded configuration, exactly what the container runs."""

from __future__ import annotations

import sys

# The configuration names the app (its ``wsgi_app``); the image runs the same command: ``gunicorn`` + these.
GUNICORN_ARGS = ["--config", "python:service.server.gunicorn_conf"]


def main() -> None:
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", *GUNICORN_ARGS]
    run()


if __name__ == "__main__":
    main()
