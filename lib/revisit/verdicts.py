"""The paper's claims checked on our runs: reproduced, contradicted, or not separated by the noise.

A claim compares two models on one evaluation ("multi-crop improves VOC SVM over MoCo": ``Claim(...,
"linear/table4/mc", "linear/table4/moco", "voc_svm")``). The verdict comes from the paired bootstrap
interval of their difference over the same test images (``results.difference``), so a page's
"what the twins reproduce" paragraph is generated from measurements, never typed. Where both models were
trained at several seeds, Welch's t-test over the seeds (``results.seed_difference``) must agree too.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .bootstrap import Interval
from .config import Profile
from .results import COLUMNS, LOWER_IS_BETTER, difference, seed_difference

EXPECTATIONS = (">", ">=")  # better; not worse


@dataclass(frozen=True)
class Claim:
    """The paper says run ``a`` is better than run ``b`` on ``evaluation`` (``expect=">"``), or not worse (``">="``);
    better is higher, except for the depth rmse."""

    text: str
    a: str
    b: str
    evaluation: str
    expect: str = ">"

    def __post_init__(self):
        if self.expect not in EXPECTATIONS:
            raise ValueError(f"expect must be one of {list(EXPECTATIONS)}, got {self.expect!r}")


def verdict(gain: Interval | None, expect: str = ">") -> str:
    """The verdict on "a is ``expect`` b" from the paired interval of a's gain over b."""
    if gain is None:
        return "untested"
    if gain.high < 0:
        return "contradicted"
    if gain.low > 0:
        return "reproduced"
    return within_noise(expect)


def within_noise(expect: str = ">") -> str:
    """The verdict on a claim whose difference the noise could explain: for "not worse" that is consistent."""
    return "consistent (within the noise)" if expect == ">=" else "not separated"


def combined(gain: Interval | None, seed_gain: Interval | None, expect: str = ">") -> str:
    """The verdict from both noises: the test images' (``gain``, paired bootstrap) and training's (``seed_gain``,
    across seeds; ``None`` when the models have one seed). Reproduced or contradicted only where both agree."""
    first = verdict(gain, expect)
    if seed_gain is None or first == "untested":
        return first
    return first if verdict(seed_gain, expect) == first else within_noise(expect)


UNTESTABLE = "untestable at this profile"
SEEDS_COLUMN = "across seeds: mean difference [95% Welch interval]"


def _better(found: Interval | None, evaluation: str) -> Interval | None:
    """A difference as a gain: the depth rmse's sign flipped, so that a positive gain is always better."""
    if found is None or evaluation not in LOWER_IS_BETTER:
        return found
    return Interval(-found.value, -found.high, -found.low)


def _shown(found: Interval | None, digits: int) -> str:
    return "-" if found is None else f"{found.value:+.{digits}f} [{found.low:+.{digits}f}, {found.high:+.{digits}f}]"


def check(claims: list[Claim], profile: Profile, blind=()) -> pd.DataFrame:
    """One row per claim: the paper's statement, our difference with its 95% paired interval (seed 0), its mean
    over the training seeds with Welch's interval where both models have several, and the verdict (``combined``).
    A claim on a column in ``blind`` (``results.blind``: no model could move it) is untestable at this profile."""
    rows = []
    for claim in claims:
        found = difference(claim.a, claim.b, profile, claim.evaluation)
        seeds = seed_difference(claim.a, claim.b, profile, claim.evaluation) if profile.seeds > 1 else None
        d = 3 if claim.evaluation in LOWER_IS_BETTER else 1
        rows.append({"claim": claim.text, "evaluation": COLUMNS[claim.evaluation],
                     "ours: difference [95% interval]": _shown(found, d), SEEDS_COLUMN: _shown(seeds, d),
                     "verdict": UNTESTABLE if COLUMNS[claim.evaluation] in blind else
                     combined(_better(found, claim.evaluation), _better(seeds, claim.evaluation), claim.expect)})
    columns = ["claim", "evaluation", "ours: difference [95% interval]", SEEDS_COLUMN, "verdict"]
    table = pd.DataFrame(rows, columns=columns)
    return table if (table[SEEDS_COLUMN] != "-").any() else table.drop(columns=SEEDS_COLUMN)


def summary(checked: pd.DataFrame) -> str:
    """One sentence counting the verdicts of ``check``'s table."""
    counts = checked["verdict"].value_counts()
    parts = [f"{counts[v]} {v}" for v in ("reproduced", "consistent (within the noise)", "not separated",
                                          "contradicted", UNTESTABLE, "untested") if v in counts]
    seeds = ("" if SEEDS_COLUMN not in checked else " Where both models were trained at several seeds, Welch's t-test "
             "over the seeds (95%, the noise of training) must put the difference on the same side of 0 as well.")
    return (f"Of the paper's {len(checked)} claims checked here: " + ", ".join(parts) + ". A claim is reproduced when "
            "the paired bootstrap interval of the difference (same test images, 95%) lies on the paper's side of 0, "
            "contradicted when it lies on the other side, and not separated when it holds 0." + seeds + " It is "
            "untestable when its column cannot discriminate at this profile (the supervised ceiling does not clear the "
            "floor).")
