"""Margins, paired differences and the generated verdicts, on run folders built by hand with known predictions."""
import numpy as np
import pandas as pd
import pytest

from revisit import verdicts
from revisit.bootstrap import Interval, Predictions, interval
from revisit.config import load_profile
from revisit.results import (CANNOT_DISCRIMINATE, blind, blind_note, column_ranges, differences, linear_scores, margins,
                             seed_difference, seed_differences, seed_scores, seed_spread, significant, styled, tally,
                             with_deltas)
from revisit.rundir import METRICS, predictions_file, write_json
from revisit.runs import plan, replicas
from revisit.verdicts import Claim, verdict

RUNS = {"A": "linear/table2_in118k", "B": "linear/table2_coco", "C": "linear/table2_oi118k"}


def _write_run(name, profile, target, predictions: Predictions):
    run = plan(name, profile)
    found = interval(predictions)
    predictions.save(predictions_file(run.dir, target))
    write_json(run.dir / METRICS, {"targets": {target: {"test": found.value, "interval": [found.low, found.high]}}})


@pytest.fixture
def three_models():
    """On 500 test images of cifar10: A right 60% of the time, B = A with 12 errors fixed (+2.4), C = A with 40 of its
    right answers made wrong (-8.0)."""
    profile = load_profile("smoke")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    a = np.where(rng.random(500) < 0.6, labels, (labels + 1) % 10)
    b, c = a.copy(), a.copy()
    wrong, right = np.flatnonzero(a != labels), np.flatnonzero(a == labels)
    b[wrong[:12]] = labels[wrong[:12]]
    c[right[:40]] = (labels[right[:40]] + 1) % 10
    for key, pred in zip("ABC", (a, b, c)):
        _write_run(RUNS[key], profile, "cifar10", Predictions("accuracy", labels, pred))
    return profile


def test_margins_differences_and_marks(three_models):
    profile, evaluations = three_models, ("cifar10",)
    found = linear_scores(RUNS, profile, evaluations)
    half = margins(RUNS, profile, evaluations)
    assert 3 < half.at["A", "CIFAR10"] < 5.5  # about 1.96 * sqrt(.6 * .4 / 500) = 4.3 points
    paired = differences(RUNS, profile, "A", evaluations)
    assert paired.at["A", "CIFAR10"] is None
    assert paired.at["B", "CIFAR10"].value == pytest.approx(2.4) and paired.at["B", "CIFAR10"].low > 0
    assert paired.at["C", "CIFAR10"].value == pytest.approx(-8.0) and paired.at["C", "CIFAR10"].high < 0
    assert list(significant(paired)["CIFAR10"].fillna(9)) == [9, 1, -1]
    cells = with_deltas(found, "A", margins=half, differences=paired)["CIFAR10"]
    assert cells["A"] == f"{found.at['A', 'CIFAR10']:.1f} ±{half.at['A', 'CIFAR10']:.1f}"
    assert cells["B"].endswith("(+2.4*)") and cells["C"].endswith("(-8.0*)")
    steps = differences(RUNS, profile, None, evaluations)  # each row against the one before: C - B = -10.4
    assert steps.at["C", "CIFAR10"].value == pytest.approx(-10.4)


def test_a_run_without_predictions_is_untested(three_models):
    runs = {**RUNS, "D": "linear/table2_random_init"}  # never run
    paired = differences(runs, three_models, "A", ("cifar10",))
    assert paired.at["D", "CIFAR10"] is None
    assert tally(significant(paired)).loc["D"].to_dict() == {"better": 0, "level": 0, "worse": 0, "untested": 1}


def test_claims_get_the_verdict_their_interval_gives(three_models):
    checked = verdicts.check([Claim("B above A", RUNS["B"], RUNS["A"], "cifar10"),
                              Claim("C above A", RUNS["C"], RUNS["A"], "cifar10"),
                              Claim("A above itself", RUNS["A"], RUNS["A"], "cifar10"),
                              Claim("A on par with itself", RUNS["A"], RUNS["A"], "cifar10", ">="),
                              Claim("never run", "linear/table2_random_init", RUNS["A"], "cifar10")], three_models)
    assert list(checked["verdict"]) == ["reproduced", "contradicted", "not separated",
                                        "consistent (within the noise)", "untested"]
    assert checked.loc[0, "ours: difference [95% interval]"].startswith("+2.4 [+")
    sentence = verdicts.summary(checked)
    assert sentence.startswith("Of the paper's 5 claims checked here: 1 reproduced, 1 consistent (within the noise), "
                               "1 not separated, 1 contradicted, 1 untested.")


@pytest.mark.parametrize("low, high, expect, expected", [
    (0.1, 2.0, ">", "reproduced"), (-2.0, -0.1, ">", "contradicted"), (-1.0, 1.0, ">", "not separated"),
    (-1.0, 1.0, ">=", "consistent (within the noise)"), (-2.0, -0.1, ">=", "contradicted"),
    (0.0, 1.0, ">", "not separated")])  # an interval touching 0 does not exclude it
def test_verdict_by_hand(low, high, expect, expected):
    assert verdict(Interval((low + high) / 2, low, high), expect) == expected


def test_an_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="expect"):
        Claim("x", "a", "b", "voc", expect="<")


def test_for_depth_lower_is_better(tmp_path):
    """Two transfer runs' depth rmse: A's squared errors are half B's on every image, so A is better beyond the noise."""
    from revisit.results import transfer_scores
    from revisit.rundir import TASKS

    profile = load_profile("smoke")
    rng = np.random.default_rng(0)
    pixels, errors = np.full(40, 100), rng.uniform(5, 15, 40)
    runs = {"A": "transfer/table4/moco", "B": "transfer/table4/mc"}
    for label, scale in (("A", 0.5), ("B", 1.0)):
        run = plan(runs[label], profile)
        found = Predictions("rmse", pixels, scale * errors)
        found.save(predictions_file(run.dir, "nyud_depth"))
        bounds = interval(found)
        (run.dir / TASKS).mkdir(parents=True, exist_ok=True)
        write_json(run.dir / TASKS / "nyud_depth.json", {"task": "nyud_depth", "value": found.value(),
                                                        "interval": [bounds.low, bounds.high]})
    assert transfer_scores(runs, profile, ("nyud_depth",)).loc["A"].item() < 0.3
    paired = differences(runs, profile, "B", ("nyud_depth",))
    assert paired.at["A", "NYUD_depth_rmse"].high < 0  # A - B: lower rmse
    assert significant(paired).at["A", "NYUD_depth_rmse"] == 1  # ... which is better
    checked = verdicts.check([Claim("A better", runs["A"], runs["B"], "nyud_depth"),
                              Claim("B better", runs["B"], runs["A"], "nyud_depth")], profile)
    assert list(checked["verdict"]) == ["reproduced", "contradicted"]


def test_a_column_whose_ceiling_does_not_clear_the_floor_is_blind(three_models):
    """B (ceiling) beats A (floor) by 2.4 beyond the noise: the column discriminates; C (ceiling) is below A: blind,
    and a claim on a blind column is untestable; a missing ceiling leaves the column untested."""
    profile = three_models
    clear = column_ranges(RUNS["B"], RUNS["A"], profile, ("cifar10",))
    assert clear.at["CIFAR10", "verdict"] == "discriminates" and clear.at["CIFAR10", "range"] == pytest.approx(2.4)
    low = column_ranges(RUNS["C"], RUNS["A"], profile, ("cifar10",))
    assert low.at["CIFAR10", "verdict"] == CANNOT_DISCRIMINATE and blind(low) == ["CIFAR10"]
    assert blind(clear) == [] and "Every column discriminates" in blind_note(clear)
    above_constant = column_ranges(RUNS["B"], RUNS["A"], profile, ("cifar10",), pd.Series({"CIFAR10": 70.0}))
    assert above_constant.at["CIFAR10", "verdict"] == CANNOT_DISCRIMINATE  # B (about 62%) is under a 70% constant
    missing = column_ranges("linear/table2_random_init", RUNS["A"], profile, ("cifar10",))
    assert missing.at["CIFAR10", "verdict"] == "untested" and blind(missing) == []
    checked = verdicts.check([Claim("B above A", RUNS["B"], RUNS["A"], "cifar10")], profile, blind(low))
    assert list(checked["verdict"]) == [verdicts.UNTESTABLE]
    assert "1 untestable at this profile" in verdicts.summary(checked)
    shown = styled(with_deltas(linear_scores(RUNS, profile, ("cifar10",)), "A"), blind(low)).to_html()
    assert "CIFAR10 (blind)" in shown and "#9a9a9a" in shown


def test_depth_rmse_ranges_count_lower_as_better():
    """Depth: a ceiling whose rmse is lower than random init.'s by more than the noise discriminates."""
    profile = load_profile("smoke")
    rng = np.random.default_rng(1)
    pixels = np.full(200, 100.0)
    floor_err = rng.uniform(0.8, 1.2, 200) * 100 * 0.5 ** 2  # rmse about 0.5
    for name, err in (("transfer/table4/random_init", floor_err), ("transfer/table3/supervised", floor_err * 0.36)):
        run = plan(name, profile)
        predictions = Predictions("rmse", pixels, err)
        found = interval(predictions)
        predictions.save(predictions_file(run.dir, "nyud_depth"))
        (run.dir / "tasks").mkdir()
        write_json(run.dir / "tasks" / "nyud_depth.json", {"value": found.value, "interval": [found.low, found.high],
                                                            "details": {"constant": 0.6}})
    found = column_ranges("transfer/table3/supervised", "transfer/table4/random_init", profile, ("nyud_depth",),
                          pd.Series({"NYUD_depth_rmse": 0.6}))
    row = found.loc["NYUD_depth_rmse"]
    assert row["verdict"] == "discriminates" and row["range"] == pytest.approx(row["random init."] - row["ceiling"])
    assert row["ceiling"] == pytest.approx(0.3, abs=0.02)


def _accuracy_run(name, profile, percent, n=100):
    """A linear run whose cifar10 predictions are right on the first ``percent`` of ``n`` test images."""
    labels = np.zeros(n, int)
    _write_run(name, profile, "cifar10", Predictions("accuracy", labels, np.where(np.arange(n) < percent * n // 100, 0, 1)))


@pytest.fixture
def seeded():
    """Three training seeds each: A at 60, 62, 64; B at 50, 51, 55; C at 62, 45, 70 (seed 0 first); each run right on
    the first images, so that seed 0's paired difference is a known subset."""
    import dataclasses

    profile = dataclasses.replace(load_profile("smoke"), seeds=3)
    for key, percents in (("A", (60, 62, 64)), ("B", (50, 51, 55)), ("C", (62, 45, 70))):
        for name, percent in zip(replicas(RUNS[key], 3), percents):
            _accuracy_run(name, profile, percent)
    return profile


def test_seed_difference_is_welchs_interval_over_the_seeds(seeded):
    """A - B by hand: means 62 and 52, variances 4 and 7, Welch-Satterthwaite degrees of freedom, Student's t."""
    from scipy.stats import t

    found = seed_difference(RUNS["A"], RUNS["B"], seeded, "cifar10")
    se2 = 4 / 3 + 7 / 3
    df = se2 ** 2 / ((4 / 3) ** 2 / 2 + (7 / 3) ** 2 / 2)
    half = t.ppf(0.975, df) * se2 ** 0.5
    assert found.value == pytest.approx(10.0)
    assert (found.low, found.high) == pytest.approx((10 - half, 10 + half))
    table = seed_scores(RUNS, seeded, ("cifar10",))
    assert list(table.loc["C", "CIFAR10"]) == [62, 45, 70]
    assert list(seed_spread(table)["CIFAR10"]) == ["62.0 [60.0, 64.0] (3)", "52.0 [50.0, 55.0] (3)",
                                                  "59.0 [45.0, 70.0] (3)"]
    assert seed_difference(RUNS["A"], "linear/table2_random_init", seeded, "cifar10") is None  # no finished seed: no test


def test_a_claim_across_seeds_needs_both_tests_to_agree(seeded):
    """A and C both beat B at seed 0 beyond the test images' noise; only A does so across the seeds as well."""
    checked = verdicts.check([Claim("A above B", RUNS["A"], RUNS["B"], "cifar10"),
                              Claim("C above B", RUNS["C"], RUNS["B"], "cifar10")], seeded)
    assert list(checked["verdict"]) == ["reproduced", "not separated"]
    assert checked.loc[1, "ours: difference [95% interval]"].startswith("+12.0 [+")  # seed 0 alone: 62 - 50
    assert checked.loc[1, verdicts.SEEDS_COLUMN].startswith("+7.0 [-")
    assert "Welch's t-test over the seeds" in verdicts.summary(checked)


def test_a_tally_across_seeds_counts_a_win_only_where_welch_agrees(seeded):
    """Against B: A and C are better at seed 0 (paired bootstrap); across the seeds only A is (C's interval holds 0)."""
    paired, seeds = differences(RUNS, seeded, "B", ("cifar10",)), seed_differences(RUNS, seeded, "B", ("cifar10",))
    assert seeds.at["B", "CIFAR10"] is None and seeds.at["C", "CIFAR10"].value == pytest.approx(7.0)
    assert list(significant(paired)["CIFAR10"].fillna(9)) == [1, 9, 1]
    assert list(significant(paired, seeds)["CIFAR10"].fillna(9)) == [1, 9, 0]
    assert tally(significant(paired, seeds)).loc["C"].to_dict() == {"better": 0, "level": 1, "worse": 0, "untested": 0}


@pytest.mark.parametrize("gain, seeds, expect, expected", [
    ((1, 3), None, ">", "reproduced"), ((1, 3), (1, 3), ">", "reproduced"), ((1, 3), (-1, 3), ">", "not separated"),
    ((-3, -1), (-3, -1), ">", "contradicted"), ((-3, -1), (1, 3), ">", "not separated"),
    ((1, 3), (-1, 3), ">=", "consistent (within the noise)"), (None, (1, 3), ">", "untested")])
def test_combined_verdict_by_hand(gain, seeds, expect, expected):
    def interval(bounds):
        return None if bounds is None else Interval(sum(bounds) / 2, *bounds)

    assert verdicts.combined(interval(gain), interval(seeds), expect) == expected
