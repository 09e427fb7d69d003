"""The plan's targets in words: met or not and by how much, and whether a night moved the
right way (the sentences the report, the workbook and `ctdata demo` print)."""

from datetime import date

import pytest

from ctdata_pipeline.metrics.targets import check_targets, judge, movement
from ctdata_pipeline.portals import PortalFileError, Target, load_portal_file, parse_portal_document

UNDER_20 = Target(below=20)
NIGHT_BEFORE = date(2026, 9, 1)


@pytest.mark.parametrize(
    ("value", "met", "words"),
    [
        (19.3, True, "Meets the plan's target (under 20%): 0.7 points below it."),
        (43.04, False, "Does not meet the plan's target (under 20%): 23.0 points above it."),
        # "under 20%" is strict: exactly 20 is not under it.
        (20.0, False, "Does not meet the plan's target (under 20%): exactly at it."),
        (0.0, True, "Meets the plan's target (under 20%): 20.0 points below it."),
        (None, None, "Not measured, so not judged against the target (under 20%)."),
    ],
)
def test_a_below_target_is_judged_in_words(value, met, words):
    judgement = judge(UNDER_20, value, "percent")
    assert (judgement.met, judgement.words) == (met, words)
    assert judgement.verdict == {True: "met", False: "not met", None: "not measured"}[met]


def test_an_above_target_is_met_only_above_it():
    at_least = Target(above=80)
    assert judge(at_least, 85.0, "percent").words == (
        "Meets the plan's target (over 80%): 5.0 points above it."
    )
    assert judge(at_least, 62.5, "percent").met is False


@pytest.mark.parametrize(
    ("metric_id", "tonight", "before", "target", "sentence"),
    [
        (
            "MD-1",
            6.3,
            6.9,
            UNDER_20,
            "Down 0.6 points since 2026-09-01 (6.9%): the right way, lower is better.",
        ),
        (
            "MD-1",
            7.5,
            6.9,
            UNDER_20,
            "Up 0.6 points since 2026-09-01 (6.9%): the wrong way, lower is better.",
        ),
        # No target: the registry's direction (MD-2 is a share meeting the standard).
        (
            "MD-2",
            6.3,
            6.9,
            None,
            "Down 0.6 points since 2026-09-01 (6.9%): the wrong way, higher is better.",
        ),
        ("MD-2", 6.9, 6.92, None, "Unchanged since 2026-09-01."),
    ],
)
def test_movement_says_whether_the_night_went_the_right_way(
    metric_id, tonight, before, target, sentence
):
    assert movement(metric_id, tonight, before, NIGHT_BEFORE, "percent", target) == sentence


def test_a_score_moves_by_its_decimal():
    assert movement("MD-4", 75.4, 75.0, NIGHT_BEFORE, "score") == (
        "Up 0.4 since 2026-09-01 (75.0): the right way, higher is better."
    )


def test_a_count_has_no_right_way():
    assert movement("INV-1", 1200, 1180, NIGHT_BEFORE, "count") == (
        "Up 20 since 2026-09-01 (1,180)."
    )
    assert movement("INV-1", 1200, None, None, "count") == (
        "First night measured: no change to report."
    )


def test_the_shipped_portal_file_sets_the_plans_target():
    shipped = load_portal_file()
    assert shipped.targets == {"MD-1": Target(below=20)}
    assert shipped.report.title == "Connecticut's open data portals"
    assert shipped.report.timezone == "America/New_York"
    check_targets(shipped, "shipped")


def test_a_target_for_no_metric_is_one_clear_error():
    portal_file = parse_portal_document(
        {
            "targets": {"MD-9": {"below": 20}},
            "portals": [{"name": "a", "kind": "socrata", "url": "https://a.example"}],
        },
        source="t.yaml",
    )
    with pytest.raises(PortalFileError, match=r"^portal file t.yaml: targets: MD-9: not a metric"):
        check_targets(portal_file, "t.yaml")
