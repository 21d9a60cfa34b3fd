# The manual as a site (issue 23): MkDocs + Material, pinned with hashes in the dev lock. `make docs` serves it
# with live reload; `make docs-build` is the strict build the test suite runs (tests/docs/test_site.py).

.PHONY: docs docs-build

DOCS_ADDR ?= 127.0.0.1:8000
DOCS_SITE ?= site
# Material 9.7+ prints an end-of-life notice about MkDocs 2 on every build: known, and not a warning about the site.
export NO_MKDOCS_2_WARNING := 1

docs: venv-dev ## serve the documentation site on http://127.0.0.1:8000 (DOCS_ADDR=host:port), rebuilt on save
	$(BIN)/mkdocs serve --strict --dev-addr $(DOCS_ADDR)

docs-build: venv-dev ## build the documentation site strictly into site/ (DOCS_SITE=dir): any warning fails
	$(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)
