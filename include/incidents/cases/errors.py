"""Typed errors of the cases area.

* :class:`CaseError` — an operation on a case that cannot be done (unknown case, executor,
  post; a historical-only operation on a live case...). The ``case`` command reports it on
  stderr with exit code 1.
* :class:`InvalidTransition` — a status change the lifecycle does not allow.
* :class:`RoutingError` — a post's labels cannot be routed (the reason goes to quarantine), or
  the reference data routing needs is missing.

All three are :class:`ValueError` subclasses, as they always were.
"""

from __future__ import annotations


class CaseError(ValueError):
    """An operation on a case that cannot be done (unknown case, executor, post...)."""


class InvalidTransition(CaseError):
    """A status change the lifecycle does not allow."""


class RoutingError(ValueError):
    """A post's labels cannot be routed (the reason goes to quarantine)."""
