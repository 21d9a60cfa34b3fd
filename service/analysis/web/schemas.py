"""The text endpoints' request and response models: they validate the query strings and generate their part of
``/openapi.json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from service.analysis.stopwords import CHOICES, DEFAULT
from service.core.schemas import QueryModel

if TYPE_CHECKING:
    StopwordsChoice = str
else:  # the document lists the choices as an enum of strings, from the one definition
    StopwordsChoice = Literal[CHOICES]


class TextOptions(QueryModel):
    lowercase: bool = Field(True, description="Fold words to lower case before counting.")
    min_length: int = Field(1, ge=1, le=100, description="Ignore words shorter than this many characters.")
    stopwords: StopwordsChoice = Field(DEFAULT, description="Drop common words of this language.")


class AnalyzeQuery(TextOptions):
    top: int = Field(10, ge=0, le=1000, description="How many of the most frequent words to return.")


class TokenizeQuery(TextOptions):
    limit: int = Field(100, ge=1, le=10000, description="How many tokens to return, from the start of the text.")


class WordcountQuery(TextOptions):
    limit: int = Field(10000, ge=1, le=100000, description="How many word counts to return, most frequent first.")


class WordFrequency(BaseModel):
    word: str
    count: int = Field(ge=1)


class AnalyzeResult(BaseModel):
    bytes: int = Field(ge=0, description="Size of the text in UTF-8 bytes.")
    tokens: int = Field(ge=0, description="Words counted (after the filters).")
    unique: int = Field(ge=0, description="Distinct words.")
    top: list[WordFrequency]
    elapsed_ms: float = Field(ge=0)


class TokenizeResult(BaseModel):
    bytes: int = Field(ge=0)
    total: int = Field(ge=0, description="All words in the text.")
    tokens: list[str] = Field(description="The first `limit` words, in order.")
    truncated: bool = Field(description="True when the text had more words than returned.")
    elapsed_ms: float = Field(ge=0)


class WordcountResult(BaseModel):
    bytes: int = Field(ge=0)
    tokens: int = Field(ge=0)
    unique: int = Field(ge=0)
    counts: list[WordFrequency] = Field(description="Most frequent first, ties alphabetical.")
    truncated: bool = Field(description="True when there were more distinct words than `limit`.")
    elapsed_ms: float = Field(ge=0)
