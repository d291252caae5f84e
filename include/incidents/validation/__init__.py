"""The validation gate (Great Expectations) of the post pipeline; see :mod:`incidents.validation.gate`.

GX is imported only when a batch is validated, so importing this package stays cheap.
"""

from incidents.validation.gate import (
    QuarantinedRecord,
    ValidationFailed,
    ValidationReport,
    combine_reports,
    raise_for_report,
    validate_batch,
    write_docs,
)

__all__ = [
    "QuarantinedRecord",
    "ValidationFailed",
    "ValidationReport",
    "combine_reports",
    "raise_for_report",
    "validate_batch",
    "write_docs",
]
