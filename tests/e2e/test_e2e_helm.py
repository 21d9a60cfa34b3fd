"""`helm test` for the installed release."""

from __future__ import annotations

import pytest

from tests.e2e.kube_support import REQUIRED_ENV, Settings, env_flag, helm_binary, helm_test

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(660)
def test_helm_test_passes(settings: Settings) -> None:
    if helm_binary() is None:
        reason = "helm is not on PATH"
        if env_flag(REQUIRED_ENV):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    result = helm_test(settings.release, settings.namespace)
    assert result.returncode == 0, f"helm test failed:\n{result.stdout}\n{result.stderr}"
