"""Text analysis, the service's workload: bytes → text → tokens → counts.

Plain Python with no web framework in sight, so it can be tested, profiled and reused on its own.
"""

from service.analysis.pipeline import Analysis, AnalysisOptions, FirstWords, StreamStats, analyze_chunks, first_words
from service.analysis.tokenizer import Tokenizer
from service.analysis.wordcount import VocabularyTooLarge, WordCount

__all__ = [
    "Analysis",
    "AnalysisOptions",
    "FirstWords",
    "StreamStats",
    "Tokenizer",
    "VocabularyTooLarge",
    "WordCount",
    "analyze_chunks",
    "first_words",
]
