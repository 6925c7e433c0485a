"""What every page of the book shows around its tables: which profile made its numbers, and which cells are missing.

Each section page opens with ``banner`` and follows a table or figure with ``missing``, so the wording and the
command that fills a missing cell are the same everywhere.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from .config import Profile


def banner(profile: Profile, here: str = ""):
    """Show the profile behind the page's numbers, its description and ``here``: what this page's runs change."""
    display(Markdown(f"**Numbers on this page: profile `{profile.name}`.** {profile.description}"
                     + (f"  \n{here}" if here else "")))


def count_missing(values) -> int:
    """Missing cells (NaN) in a DataFrame or Series, or in a list of them."""
    frames = values if isinstance(values, (list, tuple)) else [values]
    return int(sum(np.count_nonzero(pd.isna(pd.DataFrame(frame).to_numpy())) for frame in frames))


def missing(values, profile: Profile, *sections: str, what: str = "cells"):
    """Show, when ``values`` (a table of ours, or a list of tables) has missing cells, how many and the batch command
    that runs them; nothing when every cell is there."""
    count = count_missing(values)
    if count:
        where = "".join(f" --section {s}" for s in sections)
        display(Markdown(f"**{count} {what} are missing**: their runs have not finished at profile `{profile.name}`. "
                         f"Run `revisit batch --profile {profile.name}{where}`."))
