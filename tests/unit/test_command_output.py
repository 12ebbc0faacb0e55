"""Every command's progress and error lines: tagged with its name, on the stream its output needs."""

from __future__ import annotations

import pytest

from scripts.command_output import CommandOutput


def test_progress_goes_to_standard_output_and_errors_to_standard_error(capsys: pytest.CaptureFixture[str]) -> None:
    output = CommandOutput("bootstrap")
    output.progress("table tenant-api-dev ready")
    output.error(ValueError("no such stage"))
    captured = capsys.readouterr()
    assert captured.out == "[bootstrap] table tenant-api-dev ready\n"
    assert captured.err == "[bootstrap] error: no such stage\n"


def test_a_command_printing_a_document_keeps_standard_output_for_it(capsys: pytest.CaptureFixture[str]) -> None:
    CommandOutput("operator_policy", progress_on_stderr=True).progress("wrote policy.json")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "[operator_policy] wrote policy.json\n"
