"""The manual as a site (docs/, mkdocs.yml): it builds with `mkdocs build --strict` (no warning: pages, links and
anchors MkDocs knows of), every internal link and anchor of the built HTML resolves, and the configuration page's
table is the settings the service reads."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from docs.hooks.settings_table import variables
from service.config import Settings
from tests.docs.linkcheck import broken_links

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = ROOT / ".venv" / "bin" / "mkdocs"
# Material prints an end-of-life notice about MkDocs 2 on every build; it says nothing about the site.
QUIET = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MKDOCS, "build", "--strict", "--config-file", project / "mkdocs.yml", "--site-dir", site],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=QUIET,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    built = build(ROOT, site)
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    return site


def table_rows(page: Path) -> list[list[str]]:
    """The cells (text only) of every table row on a built page."""
    rows = re.findall(r"<tr>(.*?)</tr>", page.read_text(encoding="utf-8"), re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in rows]
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row] for row in cells]


def test_site_builds_strictly_with_every_page_in_the_navigation(site: Path) -> None:
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    assert {"quickstart", "configuration", "api", "batch", "model-serving", "chart", "observability"} <= pages
    assert {"operations", "cluster", "benchmarks", "architecture", "contributing"} <= pages
    for page in pages:
        assert (site / page / "index.html").is_file(), page
    assert '<h1 id="flask-svc">flask-svc' in (site / "index.html").read_text(encoding="utf-8"), "the README is not home"
    assert (site / "chart-parameters" / "index.html").is_file(), "the chart's README is not in the site"


def test_every_internal_link_and_anchor_of_the_site_resolves(site: Path) -> None:
    assert broken_links(site) == []


def test_the_link_check_finds_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "page").mkdir()
    (tmp_path / "index.html").write_text('<h2 id="here">x</h2><a href="page/">ok</a><a href="#here">ok</a>')
    (tmp_path / "page" / "index.html").write_text(
        '<a href="../#here">ok</a> <a href="../#gone">anchor</a> <a href="../missing/">file</a>'
        ' <img src="../../outside.png"> <a href="https://example.org/x#y">external</a>'
    )
    assert broken_links(tmp_path) == [
        "page/index.html: ../#gone (no such anchor)",
        "page/index.html: ../missing/ (no such file)",
        "page/index.html: ../../outside.png (leaves the site)",
    ]


def test_the_strict_build_fails_on_a_broken_link_in_a_page(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    for watched in ("README.md", "service", "charts", "bench"):  # mkdocs.yml's `watch:` paths must exist
        (project / watched).symlink_to(ROOT / watched)
    # Linked, not copied: the hooks find the repository's files (service/, charts/, bench/results/) from their own.
    for hook in (project / "docs" / "hooks").glob("*.py"):
        hook.unlink()
        hook.symlink_to(ROOT / "docs" / "hooks" / hook.name)
    with (project / "docs" / "api.md").open("a") as page:
        page.write("\n[a link to nowhere](no-such-page.md) and [an anchor](batch.md#no-such-section)\n")
    built = build(project, tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-page.md" in built.stderr and "no-such-section" in built.stderr, built.stderr


def test_configuration_page_rows_equal_the_settings_fields(site: Path) -> None:
    rows = [row for row in table_rows(site / "configuration" / "index.html") if len(row) == 4]
    assert rows[0] == ["variable", "default", "accepts", "meaning"]
    shown = [
        str(info.validation_alias)
        for info in Settings.model_fields.values()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("table", True)
    ]
    assert [row[0] for row in rows[1:]] == shown
    for row, variable in zip(rows[1:], [v for v in variables() if v.in_table], strict=True):
        meaning = variable.meaning.replace("`", "")  # as the page shows it: Markdown's code marks gone
        assert row == [variable.env, variable.default or "(unset)", variable.accepts, meaning]
    # Every variable is named on the page, the ones kept out of the table (OpenTelemetry's) included.
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") + "\n".join(r[0] for r in rows)
    assert all(v.env in page for v in variables())


# A path of the repository named in the manual, in backticks: `service/batch/coordinator.py`, `tests/server`.
NAMED_PATH = re.compile(r"`((?:service|tests|bench|harness|image|cluster|charts|k8s|docs|mk)/[A-Za-z0-9_./-]*)`")
# A module run as a program: `python -m service.batch`, `.venv/bin/python -m image build`.
RUN_MODULE = re.compile(r"python3? -m ([A-Za-z_][A-Za-z0-9_.]*)")


def named_in_manual() -> list[tuple[str, str, str]]:
    """(page, kind, name) for every repository path and every `python -m` module the README and docs/ name."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        found += [(page.name, "path", name) for name in NAMED_PATH.findall(text)]
        found += [(page.name, "module", name) for name in RUN_MODULE.findall(text)]
    return found


def test_every_path_and_module_the_manual_names_exists() -> None:
    """Code moves; the manual must move with it. A file or folder it names must exist, a module it runs must import."""
    import importlib.util

    named = named_in_manual()
    assert len(named) > 50, "the pattern no longer finds what the manual names"
    missing = []
    for page, kind, name in named:
        if kind == "path" and not (ROOT / name.rstrip("/")).exists():
            missing.append(f"{page}: {name}")
        ours = name.split(".")[0] in {"service", "bench", "harness", "image", "tests"}
        if kind == "module" and ours and importlib.util.find_spec(name) is None:
            missing.append(f"{page}: python -m {name}")
    assert not missing, "\n".join(missing)


def test_the_path_check_fails_on_a_moved_file() -> None:
    assert NAMED_PATH.findall("see `service/handlers/gone.py`") == ["service/handlers/gone.py"]
    assert not (ROOT / "service/handlers/gone.py").exists()
    assert RUN_MODULE.findall("`.venv/bin/python -m tests.container.containerlib build`") == [
        "tests.container.containerlib"
    ]
