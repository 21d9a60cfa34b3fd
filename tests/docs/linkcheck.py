"""Every internal link of a built site resolves: each relative ``href``/``src`` names a file of the site, and each
``#fragment`` an element id on the page it points at. External links (a scheme, or ``//host``) are not followed."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINKING_ATTRIBUTES = {("a", "href"), ("img", "src"), ("link", "href"), ("script", "src"), ("source", "src")}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            if (tag, name) in LINKING_ATTRIBUTES:
                self.links.append(value)


def _parse(page: Path) -> _Page:
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed


def _target(site: Path, page: Path, path: str) -> Path:
    """The file a relative URL path on ``page`` names: a directory URL means its index.html."""
    target = (page.parent / unquote(path)).resolve() if path else page
    if target.is_dir() or path.endswith("/"):
        target = target / "index.html"
    return target


def broken_links(site: Path) -> list[str]:
    """``page: link (why)`` for every internal link of the site under ``site`` that does not resolve."""
    site = site.resolve()
    pages = {page.resolve(): _parse(page) for page in sorted(site.rglob("*.html"))}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("/"):
                continue  # external, or absolute on a host the site does not know it is served from
            target = _target(site, page, parts.path)
            where = f"{page.relative_to(site)}: {link}"
            if not target.is_relative_to(site):
                broken.append(f"{where} (leaves the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no such anchor)")
    return broken
