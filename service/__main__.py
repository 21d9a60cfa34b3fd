"""``python -m service``: gunicorn with the embedded configuration, exactly what the container runs."""

from __future__ import annotations

import sys

GUNICORN_ARGS = ["--config", "python:service.gunicorn_conf", "service:create_app()"]


def main() -> None:
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", *GUNICORN_ARGS]
    run()


if __name__ == "__main__":
    main()
