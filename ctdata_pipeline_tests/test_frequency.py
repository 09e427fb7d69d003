"""FR-0: every row of the metrics.md table, in data.ct.gov wording and DCAT's ISO durations."""

import pytest

from ctdata_pipeline.catalog.frequency import FREQUENCIES, normalize_frequency
from ctdata_pipeline_tests.support import load_realdata

# (value as portals write it, code) — each FR-0 row, several wordings each.
MAPPED = [
    ("Daily", "daily"),
    ("R/P1D", "daily"),
    ("DAILY", "daily"),
    ("Every weekday", "weekday"),
    ("every  weekday", "weekday"),
    ("Weekly", "weekly"),
    ("R/P1W", "weekly"),
    ("Bi-weekly", "biweekly"),
    ("Biweekly", "biweekly"),
    ("R/P2W", "biweekly"),
    ("R/P0.5M", "biweekly"),
    ("semimonthly", "biweekly"),
    ("Monthly", "monthly"),
    ("R/P1M", "monthly"),
    ("Bi-monthly", "bimonthly"),
    ("R/P2M", "bimonthly"),
    ("Quarterly", "quarterly"),
    ("R/P3M", "quarterly"),
    ("Bi-annually", "semiannual"),
    ("Semiannual", "semiannual"),
    ("R/P6M", "semiannual"),
    ("Annually", "annual"),
    ("annual", "annual"),
    ("R/P1Y", "annual"),
    ("Annual (R/P1Y)", "annual"),  # CDC's data.json wording
    ("As needed", "as_needed"),
    ("irregular", "as_needed"),
    ("Irregular", "as_needed"),
    ("Not updated (historical only)", "historical"),  # CT handbook wording
    ("Not updated (historical data)", "historical"),  # what data.ct.gov really says
    ("No longer updated (dataset archived)", "historical"),
    # Sentences around the word, as Chicago and NY State write them (../shared/realdata).
    ("Data are updated daily.", "daily"),
    ("Updated daily", "daily"),
    ("Data are updated as needed", "as_needed"),
    # CDC's data.json wordings (../shared/realdata/socrata)
    ("Approximately Monthly", "monthly"),
    ("Bi-annual", "semiannual"),
    ("Archived", "historical"),
    ("Never", "historical"),
    ("No longer being updated", "historical"),
]
# Other ISO 8601 durations: the smallest row whose f is at least the duration.
DURATIONS = [
    ("R/PT1H", "daily"),
    ("R/PT1S", "daily"),
    ("R/P3.5D", "weekly"),
    ("R/P0.33W", "weekly"),
    ("R/P10D", "biweekly"),
    ("R/P0.33M", "biweekly"),
    ("R/P4M", "semiannual"),
    ("R/P45D", "bimonthly"),
    ("R/P200D", "annual"),
]


@pytest.mark.parametrize(("value", "code"), MAPPED + DURATIONS)
def test_wordings_and_durations_map_to_their_row(value, code):
    assert normalize_frequency(value) == (code, True)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_is_unknown_but_not_an_unmapped_value(value):
    assert normalize_frequency(value) == ("unknown", True)


@pytest.mark.parametrize(
    "value",
    [
        "Other",
        "Every 5 years",
        "NA",
        "R/P10Y",
        "R/P2Y",
        "whenever",
        "Twice weekly",
        "Not updated daily",
    ],
)
def test_a_value_that_maps_to_nothing_is_unknown_and_reported(value):
    assert normalize_frequency(value) == ("unknown", False)


def test_the_tiers_are_metrics_md_hdx_tiers():
    assert [
        (f.code, f.period_days, f.due_after, f.overdue_after, f.delinquent_after)
        for f in FREQUENCIES.values()
        if f.period_days
    ] == [
        ("daily", 1, 1, 2, 3),
        ("weekday", 1, 3, 4, 5),
        ("weekly", 7, 7, 14, 21),
        ("biweekly", 14, 14, 21, 28),
        ("monthly", 30, 30, 44, 60),
        ("bimonthly", 60, 60, 84, 108),
        ("quarterly", 90, 90, 120, 150),
        ("semiannual", 180, 180, 210, 240),
        ("annual", 365, 365, 425, 455),
    ]


# FR-0 clarified (metrics.md v2): a text naming two or more different periods is neither.
TWO_PERIODS = [
    "R/P1Y or R/P2Y",
    "daily or weekly",
    "R/P1M/R/P2M",
    "Yearly or biannually",
]


@pytest.mark.parametrize("value", TWO_PERIODS)
def test_a_value_naming_two_different_periods_is_unknown_and_reported(value):
    assert normalize_frequency(value) == ("unknown", False)


def test_cdcs_two_period_wording_is_unknown_not_annual():
    """The real value (two CDC datasets, ../shared/realdata/socrata): v1 read its first duration
    and called it annual."""
    feed = load_realdata("socrata/data_json_data.cdc.gov_2025-09-24.json")["dataset"]
    values = {d["accrualPeriodicity"] for d in feed if "R/P2Y" in str(d.get("accrualPeriodicity"))}
    two = [v for v in values if "or R/P2Y" in v]
    assert two == [
        "Future funding patterns past 2024 are uncertain however, we expect yearly or "
        "biannually is reasonable R/P1Y or R/P2Y"
    ]
    assert normalize_frequency(two[0]) == ("unknown", False)


@pytest.mark.parametrize(
    ("value", "code"),
    [("Monthly or R/P1M", "monthly"), ("Annual  (R/P1Y)", "annual"), ("Weekly (R/P7D)", "weekly")],
)
def test_one_period_named_twice_is_that_period(value, code):
    assert normalize_frequency(value) == (code, True)
