"""Russian text analysis of posts: incident or not, category/topic, hazard, municipality/settlement.

Public entry points::

    from incidents.analysis import Analyzer, AnalysisResult, CLASSIFIER_VERSION, with_fallback
    analyzer = Analyzer()                      # build once per process (≈1–2 s), thread-safe
    result = analyzer.analyse(text, source_municipality="33620")
    with_fallback(result, "33620")             # fill the source's municipality when the text names none

No Airflow imports here.
"""

from incidents.analysis.classifier import (
    CLASSIFIER_VERSION,
    AnalysisResult,
    Analyzer,
    default_analyzer,
    with_fallback,
)

__all__ = ["CLASSIFIER_VERSION", "AnalysisResult", "Analyzer", "default_analyzer", "with_fallback"]
