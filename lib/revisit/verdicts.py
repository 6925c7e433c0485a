"""The paper's claims checked on our runs: reproduced, contradicted, or not separated by the noise.

A claim compares two models on one evaluation ("multi-crop improves VOC SVM over MoCo": ``Claim(...,
"linear/table4/mc", "linear/table4/moco", "voc_svm")``). The verdict comes from the paired bootstrap
interval of their difference over the same test images (``results.linear_difference``), so a page's
"what the twins reproduce" paragraph is generated from measurements, never typed.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .bootstrap import Interval
from .config import Profile
from .results import COLUMNS, LOWER_IS_BETTER, difference

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
    return "consistent (within the noise)" if expect == ">=" else "not separated"


UNTESTABLE = "untestable at this profile"


def check(claims: list[Claim], profile: Profile, blind=()) -> pd.DataFrame:
    """One row per claim: the paper's statement, our difference with its 95% paired interval, and the verdict.
    A claim on a column in ``blind`` (``results.blind``: no model could move it) is untestable at this profile."""
    rows = []
    for claim in claims:
        found = difference(claim.a, claim.b, profile, claim.evaluation)
        gain = found
        if found is not None and claim.evaluation in LOWER_IS_BETTER:
            gain = Interval(-found.value, -found.high, -found.low)
        d = 3 if claim.evaluation in LOWER_IS_BETTER else 1
        rows.append({"claim": claim.text, "evaluation": COLUMNS[claim.evaluation],
                     "ours: difference [95% interval]": "-" if found is None else
                     f"{found.value:+.{d}f} [{found.low:+.{d}f}, {found.high:+.{d}f}]",
                     "verdict": UNTESTABLE if COLUMNS[claim.evaluation] in blind else verdict(gain, claim.expect)})
    return pd.DataFrame(rows, columns=["claim", "evaluation", "ours: difference [95% interval]", "verdict"])


def summary(checked: pd.DataFrame) -> str:
    """One sentence counting the verdicts of ``check``'s table."""
    counts = checked["verdict"].value_counts()
    parts = [f"{counts[v]} {v}" for v in ("reproduced", "consistent (within the noise)", "not separated",
                                          "contradicted", UNTESTABLE, "untested") if v in counts]
    return (f"Of the paper's {len(checked)} claims checked here: " + ", ".join(parts) + ". A claim is reproduced when "
            "the paired bootstrap interval of the difference (same test images, 95%) lies on the paper's side of 0, "
            "contradicted when it lies on the other side, and not separated when it holds 0; it is untestable when "
            "its column cannot discriminate at this profile (the supervised ceiling does not clear the floor).")

