"""The job list's error-code filter offers every job error code."""

from __future__ import annotations

from ops.console import ERROR_CODES
from orchestrator.core.error_codes import ErrorCode


def test_the_console_filters_by_every_error_code():
    assert sorted(ERROR_CODES) == sorted(ErrorCode)
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
    assert "canceled" in ERROR_CODES and "upstream_unavailable" in ERROR_CODES
