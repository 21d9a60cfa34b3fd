"""`helm test` checks, run by the flask-svc image's own python (stdlib only, so no extra image is needed).

SMOKE_CHECK=api      probes, /version and an /api/v1/analyze round trip through the app Service (SMOKE_URL)
SMOKE_CHECK=metrics  /metrics through the metrics Service (SMOKE_URL)
Prints one line per check and exits non-zero on the first failure.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = 5.0
ATTEMPTS = 10  # the Service may need a moment after a rollout before every endpoint answers


def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    # The URL is the chart's own Service address; refuse anything but http(s) all the same.
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")  # noqa: S310
    last_error: Exception | None = None
    for _ in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 — scheme checked above
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()
        except (urllib.error.URLError, OSError) as error:
            last_error = error
            time.sleep(1)
    raise RuntimeError(f"{url}: no answer after {ATTEMPTS} attempts: {last_error}")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
    print(f"ok  {message}")


def check_api(base: str) -> None:
    for path in ("/livez", "/readyz", "/startupz"):
        status, _, _ = fetch(base + path)
        expect(status == 200, f"GET {path} -> 200 (got {status})")

    status, _, body = fetch(base + "/version")
    version = json.loads(body)
    expect(status == 200 and bool(version.get("version")), f"GET /version -> 200 with a version ({version})")

    text = "The quick brown fox jumps over the lazy dog, the end."
    status, content_type, body = fetch(
        base + "/api/v1/analyze?top=1", data=text.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    expect(status == 200, f"POST /api/v1/analyze -> 200 (got {status}: {body[:200]!r})")
    expect(content_type.startswith("application/json"), f"analyze answers JSON ({content_type})")
    result = json.loads(body)
    expect(result.get("bytes") == len(text.encode()), f"analyze counted {len(text.encode())} bytes ({result})")
    expect(result.get("tokens") == 11 and result.get("unique") == 9, "analyze counted 11 words, 9 distinct")
    expect(result.get("top") == [{"word": "the", "count": 3}], "analyze ranks 'the' first, 3 times")


def check_metrics(base: str) -> None:
    status, content_type, body = fetch(base + "/metrics")
    expect(status == 200, f"GET /metrics -> 200 (got {status})")
    expect(content_type.startswith("text/plain"), f"metrics are in the Prometheus text format ({content_type})")
    text = body.decode()
    for name in ("flask_svc_build_info", "flask_svc_worker_threads"):
        expect(f"\n{name}" in f"\n{text}", f"metrics expose {name}")


def main() -> int:
    check, base = os.environ["SMOKE_CHECK"], os.environ["SMOKE_URL"].rstrip("/")
    checks = {"api": check_api, "metrics": check_metrics}
    try:
        checks[check](base)
    except (AssertionError, RuntimeError, ValueError, KeyError) as error:
        print(f"FAIL {check}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
