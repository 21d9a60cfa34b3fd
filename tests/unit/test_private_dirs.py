"""Directories and files only the service's user may change (``service.privatedirs``) and where they are used: the
data and metrics directories, the callback key, the stages' inputs, the modes of a job's files."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from service import config
from service.batch import formats, shards, signing
from service.batch.stages import ExitCode, StageContext, run
from service.batch.states import JobRecord, Stage, State
from service.batch.store import INPUT, JobStore, new_id
from service.config import ConfigError, load_settings, prepare_directories
from service.privatedirs import NotPrivate, ensure_directory, open_private_file
from service.server import metrics_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _someone_elses(path: Path) -> Path:
    """A directory another user owns: made so when this test runs as root, else one the system owns."""
    if os.geteuid() == 0:
        path.mkdir(mode=0o700)
        os.chown(path, 65534, 65534)
        return path
    return Path("/")


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """A directory the service must never empty, read or trust, with a file in it."""
    directory = tmp_path / "precious"
    directory.mkdir()
    (directory / "keep.txt").write_text("not yours")
    return directory


def test_a_missing_directory_is_created_private_with_its_parents(tmp_path: Path) -> None:
    path = ensure_directory(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a") == _mode(path) == 0o700
    assert ensure_directory(path) == path  # an existing private directory is accepted as it is


def test_a_symbolic_link_is_refused_and_not_followed(tmp_path: Path, precious: Path) -> None:
    (tmp_path / "planted").symlink_to(precious)
    with pytest.raises(NotPrivate, match="symbolic link"):
        ensure_directory(tmp_path / "planted")
    with pytest.raises(NotPrivate, match="symbolic link"):
        ensure_directory(tmp_path / "planted" / "below")  # a missing directory under a planted link, too
    assert sorted(p.name for p in precious.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("mode", [0o777, 0o702, 0o1777, 0o2707])
def test_a_directory_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(NotPrivate, match="writable by others"):
        ensure_directory(shared)


def test_group_write_is_refused_unless_the_group_is_the_services_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kubernetes' fsGroup makes a volume's files group-writable by the pod's own group: that group is us.
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o2770)
    os.chown(volume, -1, os.getegid())
    assert ensure_directory(volume) == volume
    monkeypatch.setattr(os, "getegid", lambda: os.stat(volume).st_gid + 1)  # as if the group were another's
    with pytest.raises(NotPrivate, match="writable by others"):
        ensure_directory(volume)


def test_a_directory_of_another_user_or_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotPrivate, match="belongs to uid"):
        ensure_directory(_someone_elses(tmp_path / "theirs"))
    (tmp_path / "file").write_text("")
    with pytest.raises(NotPrivate, match="not a directory"):
        ensure_directory(tmp_path / "file")


def test_a_private_file_is_a_regular_file_of_ours_nobody_else_reads(tmp_path: Path, precious: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    key.chmod(0o600)
    os.close(open_private_file(key))
    key.chmod(0o604)
    with pytest.raises(NotPrivate, match="readable or writable by others"):
        open_private_file(key)
    (tmp_path / "link").symlink_to(precious / "keep.txt")
    with pytest.raises(NotPrivate, match="symbolic link"):
        open_private_file(tmp_path / "link")
    with pytest.raises(NotPrivate, match="not a regular file"):
        open_private_file(tmp_path)


def test_a_planted_callback_key_is_not_trusted(tmp_path: Path) -> None:
    # A key someone else put where the service keeps its own would let them sign any job's callbacks.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / ".callback-key").write_text("attacker-knows-this")
    with pytest.raises(NotPrivate):
        signing.load_key(shared, "")
    private = ensure_directory(tmp_path / "private")
    (private / ".callback-key").write_text("attacker-knows-this")
    (private / ".callback-key").chmod(0o644)  # readable by everyone: not one the service wrote (0600)
    with pytest.raises(NotPrivate):
        signing.load_key(private, "")
    (private / ".callback-key").unlink()
    (private / ".callback-key").symlink_to(shared / ".callback-key")
    with pytest.raises(NotPrivate):
        signing.load_key(private, "")


def test_the_metrics_directory_is_never_emptied_through_a_planted_link(tmp_path: Path, precious: Path) -> None:
    (tmp_path / "metrics").symlink_to(precious)
    with pytest.raises(NotPrivate):
        metrics_server.reset_multiprocess_dir(str(tmp_path / "metrics"))
    assert (precious / "keep.txt").read_text() == "not yours"
    own = ensure_directory(tmp_path / "own")
    (own / "counter_1.db").write_bytes(b"old")
    metrics_server.reset_multiprocess_dir(str(own))
    assert list(own.iterdir()) == []


def test_defaults_are_private_to_the_user_and_a_planted_directory_stops_start(
    tmp_path: Path, precious: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings({})
    base = f"/tmp/flask-svc-{os.geteuid()}"
    assert (settings.multiproc_dir, settings.batch_data_dir) == (f"{base}/metrics", f"{base}/batch")
    (tmp_path / "planted").symlink_to(precious)
    for variable in ("PROMETHEUS_MULTIPROC_DIR", "FLASK_SVC_BATCH_DATA_DIR"):
        environ = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m"), "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path / "b")}
        environ[variable] = str(tmp_path / "planted")
        with pytest.raises(ConfigError, match=f"^{variable}: .*symbolic link"):
            prepare_directories(load_settings(environ))
    # A per-user base someone else made first (here a link; in /tmp, anyone may) is refused with what is in it.
    monkeypatch.setattr(config, "_private_base", lambda: str(tmp_path / "planted"))
    with pytest.raises(ConfigError, match=r"^PROMETHEUS_MULTIPROC_DIR: .*symbolic link"):
        prepare_directories(load_settings({"FLASK_SVC_BATCH_RUNNER": "off"}))
    assert sorted(p.name for p in precious.iterdir()) == ["keep.txt"]
    # With batch off its directory is not used, so not checked.
    off = {"FLASK_SVC_BATCH_RUNNER": "off", "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path / "planted")}
    prepare_directories(load_settings({**off, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}))


def _job(store: JobStore, text: bytes) -> str:
    job_id = new_id()
    with formats.atomic_writer(store.incoming(job_id) / INPUT, binary=True) as out:
        out.write(text)
    options = {"lowercase": True, "min_length": 1, "stopwords": "none"}
    store.commit(JobRecord(id=job_id, state=State.TOKENIZING, created=1.0, updated=1.0, options=options))
    return job_id


def test_a_job_is_private_and_a_symbolic_link_as_input_is_not_read(tmp_path: Path, precious: Path) -> None:
    store = JobStore(tmp_path / "data")
    store.ensure()
    job_id = _job(store, b"hello world")
    context = StageContext(store=store, job_id=job_id, max_vocabulary=100, callback_url="", secret="")
    assert run(Stage.TOKENIZE, context) is ExitCode.OK
    directory = store.path(job_id)
    assert _mode(directory) == 0o700
    assert {p.name: _mode(p) for p in directory.iterdir()} == dict.fromkeys(
        (INPUT, "job.json", formats.TOKENS, "tokenize.json"), 0o600
    )
    # A planted input: a symbolic link to a file the stage must not read.
    planted = _job(store, b"")
    (store.path(planted) / INPUT).unlink()
    (store.path(planted) / INPUT).symlink_to(precious / "keep.txt")
    context = StageContext(store=store, job_id=planted, max_vocabulary=100, callback_url="", secret="")
    assert run(Stage.TOKENIZE, context) is not ExitCode.OK
    assert not (store.path(planted) / formats.TOKENS).exists()
    outcome = store.outcome(planted, Stage.TOKENIZE)
    assert outcome is not None and "symbolic link" in str(outcome.reason)


def test_the_shard_stages_do_not_read_through_a_planted_link(tmp_path: Path, precious: Path) -> None:
    (tmp_path / INPUT).symlink_to(precious / "keep.txt")
    with pytest.raises(OSError) as planned:
        shards.plan(tmp_path / INPUT)
    assert planned.value.errno == errno.ELOOP
    with pytest.raises(OSError) as mapped:
        list(shards.read_range(tmp_path / INPUT, shards.Shard(0, 0, 9)))
    assert mapped.value.errno == errno.ELOOP
