"""Prints the authorization matrix's figures at the end of the run, with or without `-s`."""

from __future__ import annotations

from tests.security import decisions


def pytest_terminal_summary(terminalreporter):
    line = decisions.summary_line()
    if line:
        terminalreporter.write_sep("-", "authorization matrix")
        terminalreporter.write_line(line)
