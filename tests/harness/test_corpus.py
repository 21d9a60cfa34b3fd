"""The generated prose the benches measure and the upload-memory tests send."""

from __future__ import annotations

from harness import corpus


def test_corpus_is_deterministic_sized_and_optionally_unicode() -> None:
    text = corpus.generate_text(10_000)
    assert text == corpus.generate_text(10_000)
    assert 9_000 < len(text) <= 10_000
    assert text.isascii()
    assert text != corpus.generate_text(10_000, seed=2)
    assert not corpus.generate_text(10_000, unicode_share=0.05).isascii()
    vocab = corpus.vocabulary()
    assert len(vocab) == len(set(vocab)) == 5000
