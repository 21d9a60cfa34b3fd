"""The master's questions to every feature (service.server.features), asked in this process and, as under reload,
in a child interpreter: the same answers. The refusal as the server prints it is in tests/integration
(test_inference_api.py: a model file refused at start)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.batch.access import Mode, startup_note
from service.config import load_settings
from service.server import features

BEYOND_LOOPBACK = {"HOST": "0.0.0.0", "FLASK_SVC_BATCH_RUNNER": "local", "FLASK_SVC_BATCH_AUTH": "auto"}


def test_batch_notes_that_jobs_are_refused_beyond_loopback_without_auth(tmp_path: Path) -> None:
    settings = load_settings({**BEYOND_LOOPBACK, "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path)})
    assert features.startup_notes(settings) == [startup_note(Mode.REFUSE)]
    assert features.refusal(settings) is None


def test_no_note_on_loopback_or_with_batch_off(tmp_path: Path) -> None:
    on_loopback = {**BEYOND_LOOPBACK, "HOST": "127.0.0.1", "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path)}
    assert features.startup_notes(load_settings(on_loopback)) == []
    assert features.startup_notes(load_settings({**BEYOND_LOOPBACK, "FLASK_SVC_BATCH_RUNNER": "off"})) == []


def test_a_missing_model_file_is_refused(tmp_path: Path) -> None:
    line = features.refusal(load_settings({"FLASK_SVC_MODEL_PATH": str(tmp_path / "absent.skops")}))
    assert line is not None and line.startswith("model refused: ")


def test_a_child_interpreter_answers_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {**BEYOND_LOOPBACK, "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path / "batch")}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(dict(os.environ))
    assert features.refusal_and_notes_apart() == (None, features.startup_notes(settings))
    monkeypatch.setenv("FLASK_SVC_MODEL_PATH", str(tmp_path / "absent.skops"))
    assert features.refusal_and_notes_apart() == (features.refusal(load_settings(dict(os.environ))), [])
