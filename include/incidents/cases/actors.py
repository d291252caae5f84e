"""Who acts on a case: the pipeline's own names versus people (operators, executors)."""

from __future__ import annotations

PIPELINE_ACTORS = frozenset({"pipeline", "routing", "escalation", "delivery", "reprocessing"})


def is_operator(actor: str) -> bool:
    """True for a person (any actor that is not one of the pipeline's own names)."""
    return actor not in PIPELINE_ACTORS and not actor.startswith("pipeline")
