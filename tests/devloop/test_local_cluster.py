"""The local cluster's build inputs (cluster/), checked without building or starting it: `make e2e` does that.

Versions live in cluster/versions.env; each Go wrapper module must build exactly those, with its go.sum; the pause
program must behave as a pod's PID 1 needs.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
MODULES = CLUSTER / "modules"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (CLUSTER / "versions.env").read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"([A-Z_]+)=(\S+)", line.strip()):
            found[match[1]] = match[2].strip('"')
    return found


def requires(module_dir: str) -> dict[str, str]:
    text = (MODULES / module_dir / "go.mod").read_text(encoding="utf-8")
    return dict(re.findall(r"^\s*(?:require\s+)?(\S+) (v\S+)(?: // indirect)?$", text, flags=re.M))


@pytest.mark.parametrize(
    ("module_dir", "module", "key"),
    [
        ("kubernetes", "k8s.io/kubernetes", "KUBERNETES_VERSION"),
        ("etcd", "go.etcd.io/etcd/server/v3", "ETCD_VERSION"),
        ("coredns", "github.com/coredns/coredns", "COREDNS_VERSION"),
        ("metrics-server", "sigs.k8s.io/metrics-server", "METRICS_SERVER_VERSION"),
        ("skaffold", "github.com/GoogleContainerTools/skaffold/v2", "SKAFFOLD_VERSION"),
    ],
)
def test_each_wrapper_module_builds_the_pinned_version(module_dir: str, module: str, key: str) -> None:
    assert requires(module_dir).get(module) == versions()[key], f"{module_dir}/go.mod vs versions.env {key}"
    go_sum = (MODULES / module_dir / "go.sum").read_text(encoding="utf-8")
    assert f"{module} {versions()[key]} h1:" in go_sum, f"{module_dir}/go.sum does not pin {module}'s content"


def test_kubernetes_staging_modules_are_replaced_by_their_published_releases() -> None:
    minor_patch = versions()["KUBERNETES_VERSION"].removeprefix("v1.")
    text = (MODULES / "kubernetes" / "go.mod").read_text(encoding="utf-8")
    replaced = re.findall(r"^\t(k8s\.io/\S+) => (\S+) (v\S+)$", text, flags=re.M)
    assert len(replaced) >= 25, "the staging replacements are missing"
    for name, target, version in replaced:
        assert target == name and version == f"v0.{minor_patch}", (name, target, version)


def test_skaffold_pin_is_the_dev_loop_pin() -> None:
    devloop = (REPO / "mk" / "devloop.mk").read_text(encoding="utf-8")
    pin = re.search(r"^DEVLOOP_SKAFFOLD_VERSION := (\S+)$", devloop, flags=re.M)
    assert pin and pin[1] == versions()["SKAFFOLD_VERSION"]


def test_crd_module_pins_both_operators() -> None:
    pinned = requires("crds")
    assert set(pinned) == {"github.com/kedacore/keda/v2", "github.com/prometheus-operator/prometheus-operator"}
    go_sum = (MODULES / "crds" / "go.sum").read_text(encoding="utf-8")
    for module, version in pinned.items():
        assert f"{module} {version} h1:" in go_sum


@pytest.mark.parametrize("script", ["build.sh", "local-cluster.sh", "skaffold-build.sh"])
def test_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(CLUSTER / script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_local_cluster_refuses_an_unknown_command() -> None:
    result = subprocess.run(
        [str(CLUSTER / "local-cluster.sh"), "sideways"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "usage" in result.stderr


@pytest.fixture(scope="module")
def pause_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build cluster/pause/pause.c", pytrace=False)
    out = tmp_path_factory.mktemp("pause") / "pause"
    subprocess.run(
        ["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(out), str(CLUSTER / "pause" / "pause.c")], check=True
    )
    return out


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)])
def test_pause_waits_until_told_to_stop(pause_binary: Path, sig: signal.Signals, code: int) -> None:
    process = subprocess.Popen([str(pause_binary)])
    try:
        time.sleep(0.3)
        assert process.poll() is None, "pause exited on its own"
        process.send_signal(sig)
        assert process.wait(timeout=5) == code
    finally:
        process.kill()
        process.wait()
