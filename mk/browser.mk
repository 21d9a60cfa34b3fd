# Browser tests (issue 16): tests/browser drives Debian's headless chromium through the Python playwright package
# (dev lock), pointed at /usr/bin/chromium — playwright's own browser downloads are never used.

SETUP += setup-browser

.PHONY: setup-browser

setup-browser: ## install Debian's chromium for the browser tests when missing
	@test -x /usr/bin/chromium || { $(call apt_install,chromium); }
