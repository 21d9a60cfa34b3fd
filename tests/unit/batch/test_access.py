"""The batch API's access decisions without a web framework or a cluster: modes, bearer headers, token files, the
review cache, and the kubernetes gate's use of its reviews (a recording stand-in for the API server here; the real
one is in tests/e2e/test_e2e_batch_access.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.batch.access import (
    ClosedGate,
    MissingToken,
    Mode,
    NotConfigured,
    OpenGate,
    RejectedToken,
    ReviewUnavailable,
    User,
    Verb,
    bearer_token,
    require,
    resolve_mode,
    startup_note,
    token_key,
)
from service.batch.access import Forbidden as AccessForbidden
from service.batch.access_kube import KubernetesGate, TtlCache
from service.batch.access_tokens import TokenGate, parse_tokens, read_token_file
from service.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("auth", "host", "mode"),
    [
        ("auto", "127.0.0.1", Mode.NONE),
        ("auto", "::1", Mode.NONE),
        ("auto", "localhost", Mode.NONE),
        ("auto", "0.0.0.0", Mode.REFUSE),
        ("auto", "::", Mode.REFUSE),
        ("auto", "svc.example", Mode.REFUSE),
        ("none", "0.0.0.0", Mode.NONE),
        ("token", "127.0.0.1", Mode.TOKEN),
        ("kubernetes", "0.0.0.0", Mode.KUBERNETES),
    ],
)
def test_auto_is_anonymous_only_on_loopback(auth: str, host: str, mode: Mode) -> None:
    assert resolve_mode(auth, host) is mode


def test_only_the_refusing_mode_has_a_start_note_and_it_names_the_variable() -> None:
    note = startup_note(Mode.REFUSE)
    assert note is not None and "FLASK_SVC_BATCH_AUTH" in note and "\n" not in note
    assert all(startup_note(mode) is None for mode in Mode if mode is not Mode.REFUSE)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwdw==", "token abc"])
def test_a_header_without_a_bearer_token_is_missing(header: str | None) -> None:
    with pytest.raises(MissingToken):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer  abc.def ") == "abc.def"


def test_token_file_lines() -> None:
    tokens = parse_tokens("# ops\n\nsecret-a,alice\n secret-b , bob , admin \nsecret-c\n")
    assert [(t.secret, t.user.name, t.admin) for t in tokens[:2]] == [
        (b"secret-a", "alice", False),
        (b"secret-b", "bob", True),
    ]
    anonymous = tokens[2]
    assert anonymous.user.name == "token:" + token_key("secret-c")[:12] and not anonymous.admin
    assert "secret-c" not in anonymous.user.name


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("", "no token"),
        ("# only a comment\n", "no token"),
        ("a,b,root\n", "line 1"),
        ("ok\n,alice\n", "line 2"),
        ("a,b,admin,x", "line 1"),
    ],
)
def test_bad_token_files_name_the_line(text: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        parse_tokens(text)


def test_an_unset_or_unreadable_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not set"):
        read_token_file("")
    with pytest.raises(OSError):
        read_token_file(str(tmp_path / "absent"))


def _token_file(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_token_gate(tmp_path: Path) -> None:
    gate = TokenGate(_token_file(tmp_path / "tokens", "s3cret,alice\nroot-token,root,admin\nnon-ascii-é,carol\n"))
    alice = gate.authenticate("Bearer s3cret")
    assert alice.name == "alice"
    assert gate.allowed(alice, Verb.CREATE) and not gate.allowed(alice, Verb.LIST, everyone=True)
    assert gate.allowed(gate.authenticate("Bearer root-token"), Verb.DELETE, everyone=True)
    assert gate.authenticate("Bearer non-ascii-é").name == "carol"
    for forged in ("Bearer s3cre", "Bearer s3cret2", "Bearer \udcff", "Bearer ünïcode"):
        with pytest.raises(RejectedToken):
            gate.authenticate(forged)
    with pytest.raises(MissingToken):
        gate.authenticate(None)


def test_token_gate_follows_the_file_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    gate = TokenGate(_token_file(path, "old,alice\n"))
    replacement = tmp_path / "next"
    replacement.write_text("new,alice\n")
    os.replace(replacement, path)  # how a mounted Secret's file changes: a new inode
    with pytest.raises(RejectedToken):
        gate.authenticate("Bearer old")
    assert gate.authenticate("Bearer new").name == "alice"
    broken = tmp_path / "broken"
    broken.write_text("a,b,c,d\n")
    os.replace(broken, path)
    assert gate.authenticate("Bearer new").name == "alice"


def test_open_and_closed_gates() -> None:
    anonymous = OpenGate().authenticate(None)
    assert anonymous.name == "" and OpenGate().allowed(anonymous, Verb.LIST, everyone=True)
    with pytest.raises(NotConfigured, match="FLASK_SVC_BATCH_AUTH"):
        ClosedGate().authenticate("Bearer anything")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_expires_and_stays_bounded() -> None:
    clock = Clock()
    cache = TtlCache(ttl=10, size=3, clock=clock)
    cache.put("a", 1)
    clock.now += 9.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    for key in "bcde":
        cache.put(key, key)
    assert len(cache) == 3 and cache.get("b") is None and cache.get("e") == "e"


class FakeReviews:
    """Stands in for the API server: ``users`` maps tokens to users, ``grants`` lists (user, verb, subresource)."""

    def __init__(self) -> None:
        self.users = {"alice-token": User("system:serviceaccount:ns:alice", groups=("system:serviceaccounts",))}
        self.grants = {("system:serviceaccount:ns:alice", "create", ""), ("system:serviceaccount:ns:alice", "list", "")}
        self.calls: list[tuple[object, ...]] = []
        self.down = False

    def token_review(self, token: str) -> User | None:
        self.calls.append(("token", token))
        if self.down:
            raise ReviewUnavailable("the Kubernetes API is unreachable")
        return self.users.get(token)

    def access_review(self, user: User, verb: Verb, subresource: str, namespace: str) -> bool:
        self.calls.append(("access", user.name, verb.value, subresource, namespace, user.groups))
        if self.down:
            raise ReviewUnavailable("the Kubernetes API is unreachable")
        return (user.name, verb.value, subresource) in self.grants


def test_kubernetes_gate_asks_the_cluster_once_per_ttl() -> None:
    reviews, clock = FakeReviews(), Clock()
    gate = KubernetesGate(reviews, "ns", TtlCache(clock=clock))
    for _ in range(3):
        alice = gate.authenticate("Bearer alice-token")
        assert gate.allowed(alice, Verb.CREATE)
    assert alice.name == "system:serviceaccount:ns:alice" and alice.key == token_key("alice-token")
    assert reviews.calls == [
        ("token", "alice-token"),
        ("access", alice.name, "create", "", "ns", ("system:serviceaccounts",)),
    ]
    assert not gate.allowed(alice, Verb.DELETE) and not gate.allowed(alice, Verb.LIST, everyone=True)
    assert reviews.calls[-1][3] == "all"
    with pytest.raises(AccessForbidden, match=r"analysisjobs/all\.flask-svc\.dev"):
        require(gate, alice, Verb.LIST, everyone=True)
    clock.now += 11
    gate.authenticate("Bearer alice-token")
    assert reviews.calls[-1] == ("token", "alice-token")


def test_kubernetes_gate_caches_rejections_and_never_allows_when_the_api_is_away() -> None:
    reviews = FakeReviews()
    gate = KubernetesGate(reviews, "ns")
    for _ in range(2):
        with pytest.raises(RejectedToken):
            gate.authenticate("Bearer forged")
    assert reviews.calls == [("token", "forged")]
    reviews.down = True
    with pytest.raises(ReviewUnavailable):
        gate.authenticate("Bearer other")
    alice = User("system:serviceaccount:ns:alice", key="k")
    with pytest.raises(ReviewUnavailable):
        gate.allowed(alice, Verb.GET)
    reviews.down = False  # an unavailable answer is not cached
    with pytest.raises(RejectedToken):
        gate.authenticate("Bearer other")


def test_settings_default_to_auto_and_token_mode_needs_a_usable_file(tmp_path: Path) -> None:
    assert load_settings({}).batch_auth == "auto"
    assert load_settings({"FLASK_SVC_BATCH_AUTH": " None "}).batch_auth == "none"
    good = _token_file(tmp_path / "tokens", "t,alice\n")
    assert (
        load_settings({"FLASK_SVC_BATCH_AUTH": "token", "FLASK_SVC_BATCH_AUTH_TOKENS_FILE": good}).batch_auth == "token"
    )
    empty = _token_file(tmp_path / "empty", "# nothing\n")
    for tokens_file, reason in [(None, "not set"), (str(tmp_path / "absent"), "No such file"), (empty, "no token")]:
        env = {"FLASK_SVC_BATCH_AUTH": "token"} | (
            {} if tokens_file is None else {"FLASK_SVC_BATCH_AUTH_TOKENS_FILE": tokens_file}
        )
        with pytest.raises(ConfigError, match=f"^FLASK_SVC_BATCH_AUTH_TOKENS_FILE=.*{reason}") as error:
            load_settings(env)
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"^FLASK_SVC_BATCH_AUTH='anyone' is invalid"):
        load_settings({"FLASK_SVC_BATCH_AUTH": "anyone"})


def test_kubernetes_mode_outside_a_pod_stops_start_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^FLASK_SVC_BATCH_AUTH='kubernetes' needs a pod's service account"):
        load_settings({"FLASK_SVC_BATCH_AUTH": "kubernetes"})
