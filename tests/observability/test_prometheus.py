"""A real Prometheus scrapes the real service under gunicorn (2 workers).

After a known mix of requests the totals Prometheus reports must equal what was sent; then every PromQL expression of
every dashboard panel must return data and every rule must parse and evaluate; a SIGKILLed worker must not make any
counter go backwards.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.models import write_iris
from harness.net import free_port
from harness.server import stop, workers_of

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts/flask-svc/files/dashboards/flask-svc.json"
RULES = ROOT / "charts/flask-svc/files/rules/flask-svc.rules.yaml"
JOB = "flask-svc"
# Static target labels standing in for what a ServiceMonitor adds in Kubernetes.
TARGET_LABELS = {"namespace": "test", "pod": "p"}
WORKERS = 2
THREADS = 4
MAX_UPLOAD = 16384

pytestmark = pytest.mark.slow


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, KeyError, IndexError, ValueError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    url: str
    metrics_url: str
    log: Path

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = requests.get(self.metrics_url, timeout=5).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def api(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return list(data["result"])

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else math.nan

    def by(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(s["metric"].get(lb, "") for lb in labels): float(s["value"][1]) for s in self.query(expr)}


@pytest.fixture(scope="module")
def binaries() -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make setup-observability)")
    return {name: str(path) for name, path in found.items()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("observability")


@pytest.fixture(scope="module")
def service(workdir: Path) -> Iterator[Service]:
    port, metrics_port, dead_collector = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "FLASK_SVC_"))}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        METRICS_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "multiproc"),
        WEB_CONCURRENCY=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
        FLASK_SVC_DEBUG_ENDPOINTS="true",
        FLASK_SVC_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        FLASK_SVC_MODEL_PATH=str(write_iris(workdir / "iris.skops")),  # the model-serving row needs data too
        LOG_LEVEL="warning",
        # Tracing on, pointed at a closed loopback port: failed exports feed flask_svc_otel_spans_dropped_total.
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{dead_collector}",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    log = workdir / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=out, stderr=out)
    svc = Service(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", log)
    try:

        def ready() -> bool:
            assert proc.poll() is None, f"service exited {proc.returncode}: {log.read_text()[-3000:]}"
            return requests.get(f"{svc.url}/readyz", timeout=2).status_code == 200 and "flask_svc_build_info" in (
                requests.get(svc.metrics_url, timeout=2).text
            )

        wait_for("the service to be ready and serve flask_svc_build_info", ready, timeout=30)
        yield svc
    finally:
        stop(proc, timeout=15)


@pytest.fixture(scope="module")
def prometheus(binaries: dict[str, str], workdir: Path, service: Service) -> Iterator[Prometheus]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {"targets": [service.metrics_url.split("/")[2]], "labels": TARGET_LABELS},
                ],
            }
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binaries["prometheus"],
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            cwd=workdir,
            stdout=out,
            stderr=out,
        )
    prom = Prometheus(proc, f"http://127.0.0.1:{port}", log)
    try:

        def scraped() -> bool:
            assert proc.poll() is None, f"prometheus exited {proc.returncode}: {log.read_text()[-3000:]}"
            return prom.scalar(f'up{{job="{JOB}"}}') == 1

        # Target discovery hands over the static target after ~5 s.
        wait_for("the first successful scrape", scraped, timeout=30)
        yield prom
    finally:
        stop(proc, timeout=15)


@dataclass
class Sent:
    """What the test sent, in the shape Prometheus should report it."""

    by_method_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_route: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    inferences: Counter[str] = field(default_factory=Counter)
    text_bytes: int = 0
    reported_bytes: int = 0
    tokens: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_method_status.values())


REJECT_REASONS = {400: "bad_request", 413: "payload_too_large", 415: "unsupported_media_type", 422: "unprocessable"}
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "Flask on gunicorn, packaged for Kubernetes. " * 20,
    "ünïcödé wörds are bytes too — naïve café",
    "one",
]


def send_batch(svc: Service, sent: Sent) -> None:
    """One round of traffic: successes on several routes, 4xx of each kind, 5xx, a 404, and probes."""

    def record(method: str, route: str, response: requests.Response) -> requests.Response:
        status = response.status_code
        sent.by_method_status[(method, str(status))] += 1
        sent.by_route[(route, method, str(status))] += 1
        if status in REJECT_REASONS:
            sent.rejected[REJECT_REASONS[status]] += 1
        return response

    def analysis(path: str, text: str, *, as_json: bool = False, as_file: bool = False) -> None:
        url = f"{svc.url}/api/v1/{path}"
        if as_json:
            response = requests.post(url, json={"text": text}, timeout=10)
        elif as_file:
            response = requests.post(url, files={"file": ("t.txt", text.encode(), "text/plain")}, timeout=10)
        else:
            response = requests.post(url, data=text.encode(), headers={"Content-Type": "text/plain"}, timeout=10)
        record("POST", f"/api/v1/{path}", response)
        assert response.status_code == 200, response.text
        body = response.json()
        sent.text_bytes += len(text.encode())
        sent.reported_bytes += body["bytes"]
        sent.tokens += body["total"] if path == "tokenize" else body["tokens"]  # tokenize lists the words

    for _ in range(3):
        record("GET", "/version", requests.get(f"{svc.url}/version", timeout=5))
    record("GET", "/api/v1/info", requests.get(f"{svc.url}/api/v1/info", timeout=5))
    for text in TEXTS:
        analysis("analyze", text)
    analysis("analyze", TEXTS[1], as_json=True)
    analysis("analyze", TEXTS[2], as_file=True)
    analysis("wordcount", TEXTS[1])
    analysis("tokenize", TEXTS[0])

    analyze = f"{svc.url}/api/v1/analyze"
    record(
        "POST",
        "/api/v1/analyze",
        requests.post(analyze, data=b"<a/>", headers={"Content-Type": "application/xml"}, timeout=5),
    )
    record("POST", "/api/v1/analyze", requests.post(analyze, json={"no_text": 1}, timeout=5))
    record(
        "POST",
        "/api/v1/analyze",
        requests.post(analyze, data=b"{", headers={"Content-Type": "application/json"}, timeout=5),
    )
    # Over the upload limit; a fresh connection, since the server may close it without reading the body.
    too_big = requests.post(
        analyze,
        data=b"x" * (MAX_UPLOAD + 4096),
        headers={"Content-Type": "text/plain", "Connection": "close"},
        timeout=10,
    )
    record("POST", "/api/v1/analyze", too_big)
    row = [5.1, 3.5, 1.4, 0.2]
    for rows, outcome in (([row] * 3, "ok"), ([row[:3]], "invalid")):
        tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}
        infer = requests.post(f"{svc.url}/v2/models/iris/infer", json={"inputs": [tensor]}, timeout=5)
        record("POST", "/v2/models/<name>/infer", infer)
        sent.inferences[outcome] += 1
    record("POST", "/api/v1/predict", requests.post(f"{svc.url}/api/v1/predict", json={"instances": [row]}, timeout=5))
    sent.inferences["ok"] += 1
    for code in (500, 500, 503):
        record("GET", "/status/<int:code>", requests.get(f"{svc.url}/status/{code}", timeout=5))
    # No route: the label must be a fixed placeholder, never the raw path.
    record("GET", "unmatched", requests.get(f"{svc.url}/no/such/path/12345", timeout=5))
    # Probes are not counted at all.
    for probe in ("/livez", "/healthz", "/readyz", "/startupz"):
        assert requests.get(f"{svc.url}{probe}", timeout=5).status_code == 200

    statuses = {status for (_, status) in sent.by_method_status}
    assert {"200", "400", "404", "413", "415", "422", "500", "503"} <= statuses, statuses


def prometheus_view(prom: Prometheus) -> dict[str, Any]:
    sel = f'job="{JOB}"'
    return {
        "by_method_status": prom.by(f"sum by (method, status) (flask_http_request_total{{{sel}}})", "method", "status"),
        "by_route": prom.by(
            f"sum by (url_rule, method, status) (flask_http_request_duration_seconds_count{{{sel}}})",
            "url_rule",
            "method",
            "status",
        ),
        "rejected": prom.by(f"sum by (reason) (flask_svc_rejected_requests_total{{{sel}}})", "reason"),
        "bytes": prom.scalar(f"sum(flask_svc_analyzed_bytes_total{{{sel}}})"),
        "tokens": prom.scalar(f"sum(flask_svc_tokens_total{{{sel}}})"),
        "inferences": prom.by(
            f'sum by (outcome) (flask_svc_inference_duration_seconds_count{{{sel},outcome!="error"}})', "outcome"
        ),
    }


def expected_view(sent: Sent) -> dict[str, Any]:
    return {
        "by_method_status": {key: float(n) for key, n in sent.by_method_status.items()},
        "by_route": {key: float(n) for key, n in sent.by_route.items()},
        "rejected": {(reason,): float(n) for reason, n in sent.rejected.items()},
        "bytes": float(sent.text_bytes),
        "tokens": float(sent.tokens),
        "inferences": {(outcome,): float(n) for outcome, n in sent.inferences.items()},
    }


@pytest.fixture(scope="module")
def traffic(service: Service, prometheus: Prometheus) -> Sent:
    """Two rounds of traffic, each waited for in Prometheus, so that every series exists before the second round
    and every rate() over the test's window is non-zero."""
    sent = Sent()
    dropped_spans = f'sum(flask_svc_otel_spans_dropped_total{{job="{JOB}"}})'
    dropped_before = 0.0
    for _ in range(2):
        send_batch(service, sent)
        expected = expected_view(sent)
        wait_for(
            "Prometheus to report the totals sent",
            lambda expected=expected: prometheus_view(prometheus) == expected,
            timeout=20,
        )
        # Tracing exports to a closed port: each round's spans must show up as dropped.
        dropped_before = wait_for(
            "dropped spans to be counted",
            lambda floor=dropped_before: (value := prometheus.scalar(dropped_spans)) > floor and value,
            timeout=20,
        )
    assert sent.reported_bytes == sent.text_bytes
    return sent


def test_prometheus_totals_equal_requests_sent(prometheus: Prometheus, traffic: Sent) -> None:
    assert prometheus_view(prometheus) == expected_view(traffic)
    assert prometheus.scalar(f'sum(flask_http_request_total{{job="{JOB}"}})') == traffic.total
    # Route templates only: no raw path, no probe, no metrics path among the label values.
    routes = {labels[0] for labels in prometheus.by("flask_http_request_duration_seconds_count", "url_rule")}
    assert routes == {route for route, _, _ in traffic.by_route}
    assert not any(p in route for route in routes for p in ("12345", "livez", "healthz", "readyz", "metrics"))


# ---- the dashboard


def load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panel_queries() -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) for every target of every panel."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in load_dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


# The values Grafana would substitute: a concrete selection (as the variables' queries offer it) and "All",
# whose allValue `.*` also matches series that lack the label.
SELECTIONS = {
    "selected": {"namespace": "test", "job": JOB, "pod": "p"},
    "all": {"namespace": ".*", "job": JOB, "pod": ".*"},
}
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def substitute(expr: str, values: dict[str, str]) -> str:
    known = {**values, **BUILTINS}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in known, f"unknown variable ${name} in {expr}"
        return known[name]

    return VARIABLE.sub(repl, expr)


def test_dashboard_variable_queries_offer_the_target(prometheus: Prometheus, traffic: Sent) -> None:
    """label_values(metric{…}, label), resolved the way Grafana does it, through /api/v1/series."""
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"] if v["type"] == "query"}
    expected = {"namespace": ["test"], "job": [JOB], "pod": ["p"]}
    assert set(variables) == set(expected)
    for name, variable in variables.items():
        query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, query
        selector = substitute(match.group(1), SELECTIONS["selected"])
        series = prometheus.api("series", **{"match[]": selector})
        assert sorted({s[match.group(2)] for s in series if match.group(2) in s}) == expected[name], (name, query)


def preselected() -> dict[str, str]:
    """The variables as the chart preselects them for a release in namespace "test" whose metrics job is this test's
    (the operator takes `job` from the Service label named by jobLabel; part-of is "flask-svc"), substituted as
    Grafana does: a multi-value selection of one value is that value."""
    helm = ROOT / ".tools/bin/helm"
    found = str(helm) if helm.is_file() else shutil.which("helm")
    if found is None:
        pytest.skip("helm not installed (make setup-chart)")
    result = subprocess.run(
        [found, "template", "svc", str(ROOT / "charts/flask-svc"), "--namespace", TARGET_LABELS["namespace"],
         "--kube-version", "1.31.0", "--show-only", "templates/dashboard-configmap.yaml",
         "--set", "metrics.serviceMonitor.jobLabel=app.kubernetes.io/part-of"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dashboard = json.loads(yaml.safe_load(result.stdout)["data"]["flask-svc.json"])
    values = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            value = variable["current"]["value"]
            value = value[0] if isinstance(value, list) and len(value) == 1 else value
            values[variable["name"]] = variable.get("allValue", ".*") if value == "$__all" else value
    assert values == {"namespace": TARGET_LABELS["namespace"], "job": JOB, "pod": ".*"}, values
    return values


@pytest.mark.parametrize("selection", [*sorted(SELECTIONS), "preselected"])
def test_every_dashboard_query_returns_data(prometheus: Prometheus, traffic: Sent, selection: str) -> None:
    chosen = preselected() if selection == "preselected" else SELECTIONS[selection]
    failures = []
    for title, ref, expr in panel_queries():
        result = prometheus.query(substitute(expr, chosen))
        values = [float(sample["value"][1]) for sample in result]
        if not any(math.isfinite(v) for v in values):
            failures.append(f"{title} [{ref}]: {values or 'no data'}\n    {expr}")
    assert not failures, "panels without data:\n" + "\n".join(failures)


def test_dashboard_numbers_match_the_traffic(prometheus: Prometheus, traffic: Sent) -> None:
    """Spot-check panel maths against what was sent: the error ratio over the run, the replica count."""
    values = SELECTIONS["selected"]
    queries = {(title, ref): expr for title, ref, expr in panel_queries()}
    ratio = prometheus.scalar(
        substitute(queries["5xx error ratio", "A"], values).replace("[1m]", "[10m]").replace("rate(", "increase(")
    )
    errors = sum(n for (_, status), n in traffic.by_method_status.items() if status.startswith("5"))
    # increase() extrapolates, but numerator and denominator alike: the ratio stays close.
    assert ratio == pytest.approx(errors / traffic.total, rel=0.15)
    assert prometheus.scalar(substitute(queries["Replicas", "A"], values)) == 1
    capacity = substitute(queries["In-flight requests vs thread capacity", "B"], values)
    assert prometheus.scalar(capacity) == WORKERS * THREADS


def test_route_error_ratio_is_zero_for_routes_that_never_failed(prometheus: Prometheus, traffic: Sent) -> None:
    """Every route with traffic has a 5xx ratio: 0 where nothing failed (not "No data"), above 0 where it did."""
    queries = {(title, ref): expr for title, ref, expr in panel_queries()}
    expr = substitute(queries["5xx error ratio by route", "B"], SELECTIONS["selected"])
    ratios = {s["metric"]["url_rule"]: float(s["value"][1]) for s in prometheus.query(expr.replace("[1m]", "[10m]"))}
    failed = {route for route, _, status in traffic.by_route if status.startswith("5")}
    assert set(ratios) == {route for route, _, _ in traffic.by_route}
    assert failed and all(ratios[route] > 0 for route in failed), ratios
    assert all(ratios[route] == 0 for route in set(ratios) - failed), ratios


# ---- the rules


def rule_expressions() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [(rule.get("record") or rule["alert"], rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def test_every_rule_expression_evaluates(prometheus: Prometheus, traffic: Sent) -> None:
    for _name, expr in rule_expressions():
        prometheus.query(expr)  # asserts status == success: parses and evaluates
    # Loaded by this Prometheus too: every rule healthy, and the recording rules produce our series.
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(rule_expressions())
    assert all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]
    want = {"namespace": "test", "job": JOB}
    for record in (
        "namespace_job:flask_http_requests:rate5m",
        "namespace_job:flask_http_request_errors:ratio_rate5m",
        "namespace_job:flask_http_request_errors:ratio_rate1h",
        "namespace_job:flask_http_request_duration_seconds:p99_rate5m",
        "namespace_job:flask_svc_thread_saturation:ratio_avg5m",
        "namespace_job:flask_svc_build_info:seen6h",
    ):
        result = wait_for(f"{record} to be recorded", lambda r=record: prometheus.query(r), timeout=10)
        assert [{k: v for k, v in s["metric"].items() if k != "__name__"} for s in result] == [want], record


def test_alerts_react_to_the_traffic(prometheus: Prometheus, traffic: Sent) -> None:
    """The test's 5xx share (~10 %) is above the 5 % alert and the 14.4x burn rate: both go pending at once
    (their `for:` keeps them from firing within the test); the target alerts stay quiet."""
    errors = sum(n for (_, status), n in traffic.by_method_status.items() if status.startswith("5"))
    assert errors / traffic.total > 14.4 * 0.005

    def active() -> set[tuple[str, str]]:
        return {
            (alert["labels"]["alertname"], alert["labels"].get("long_window", ""))
            for alert in prometheus.api("alerts")["alerts"]
        }

    wait_for(
        "error-ratio and fast-burn alerts to be pending",
        lambda: {("FlaskSvcHighErrorRatio", ""), ("FlaskSvcErrorBudgetBurn", "1h")} <= active(),
        timeout=15,
    )
    names = {name for name, _ in active()}
    assert not names & {"FlaskSvcTargetDown", "FlaskSvcDown", "FlaskSvcThreadsSaturated"}, names


# ---- worker replacement


def counter_samples(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[Any, float]:
    return {key: value for key, value in scrape.items() if key[0].endswith(("_total", "_count", "_bucket", "_sum"))}


def test_worker_kill_never_makes_counters_go_backwards(service: Service, prometheus: Prometheus, traffic: Sent) -> None:
    workers = workers_of(service.proc.pid)
    assert len(workers) == WORKERS, workers
    before = counter_samples(service.scrape())
    assert before

    victim = workers[0].pid
    os.kill(victim, signal.SIGKILL)
    wait_for(
        "gunicorn to replace the killed worker",
        lambda: len(pids := {p.pid for p in workers_of(service.proc.pid)}) == WORKERS and victim not in pids,
        timeout=15,
    )
    wait_for("the replacement to serve", lambda: requests.get(f"{service.url}/readyz", timeout=2).ok, timeout=10)
    more = Sent()
    send_batch(service, more)

    after = counter_samples(service.scrape())
    went_back = {key: (value, after.get(key)) for key, value in before.items() if after.get(key, -1) < value}
    assert not went_back, went_back
    total = f'sum(flask_http_request_total{{job="{JOB}"}})'
    # The dead worker's live gauges are gone: capacity is back to workers x threads, not more.
    wait_for(
        "thread capacity to settle at workers x threads",
        lambda: service.scrape().get(("flask_svc_worker_threads", frozenset())) == WORKERS * THREADS,
        timeout=60,  # /readyz may be answered by the surviving worker while the replacement still boots
    )

    # Prometheus agrees: the new total is seen, and no counter series ever reset during the whole run.
    wait_for(
        "Prometheus to see the traffic after the kill",
        lambda: prometheus.scalar(total) == traffic.total + more.total,
        timeout=15,
    )
    # resets() drops the metric name, so ask one counter at a time.
    counters = [
        name
        for name in prometheus.api("label/__name__/values", **{"match[]": f'{{job="{JOB}"}}'})
        if name.startswith("flask_") and name.endswith(("_total", "_count", "_bucket"))
    ]
    assert "flask_http_request_total" in counters, counters
    resets = {name: prometheus.query(f'resets({name}{{job="{JOB}"}}[10m]) > 0') for name in counters}
    assert not any(resets.values()), resets
