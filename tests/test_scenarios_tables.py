"""The scenario matrix's table kinds (issue 12): every kind of table a user brings (a bundled
set, CSV with text labels, CSV without labels, an .npz table), crossed with every model family;
the same checks as tests/test_scenarios.py's image kinds (shared in scenario_kit.py), in a file
of its own so that the matrix's two halves run on two test processes.
"""

from __future__ import annotations

import pytest

from scenario_kit import (
    IMAGE_KINDS,
    KIND_NAMES,
    cases,
    open_reports,
    run_scenario,
)

pytestmark = pytest.mark.slow

TABLE_KINDS = [k for k in KIND_NAMES if k not in IMAGE_KINDS]
TABLE_CASES = cases(TABLE_KINDS)



@pytest.mark.parametrize(("kind_name", "family", "arch"), TABLE_CASES,
                         ids=[f"{k}-{f}-{a}" for k, f, a in TABLE_CASES])
def test_scenario(kinds, kind_name, family, arch, tmp_path_factory):
    run_scenario(kinds, kind_name, family, arch, tmp_path_factory)


@pytest.mark.browser
def test_every_table_scenario_report_opens_without_console_errors():
    """Runs after this file's matrix: every finished table run's report in Chromium."""
    open_reports(TABLE_KINDS)
