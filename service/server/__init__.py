"""The server layer: what runs the app under gunicorn, and nothing the app needs to run elsewhere.

- ``gunicorn_conf``: the configuration ``python -m service`` and the image load; the master's hooks.
- ``features``: what the master asks of every feature before its workers start (a refusal, start notes).
- ``worker``: gthread, with request heads read and liveness answered in its loop (``httphead`` reads a head;
  ``responses``: what it writes without Flask).
- ``metrics_server``: ``/metrics`` served from the master's own loop (``metrics_port``: its connections).
- ``exposition``: what that port answers (prometheus_client's formats, without its web servers).
- ``shutdown``: how everything that was started stops, in order.

It sits above the app: it builds the app through the factory and reads only what the app keeps on
``app.extensions`` and in ``service.lifecycle``; nothing in the app imports it.
"""
