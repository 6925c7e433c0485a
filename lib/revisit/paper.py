"""The paper's reference numbers (shipped with the package as ``paper_tables.yaml``).

Every number the book prints as "paper" comes from here; nothing is typed into a notebook.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml


@lru_cache(maxsize=1)
def tables() -> dict:
    """All reference tables, as transcribed from the paper."""
    text = resources.files("revisit").joinpath("paper_tables.yaml").read_text()
    return yaml.safe_load(text)


def table(name: str) -> pd.DataFrame:
    """One reference table as a DataFrame (rows = methods or datasets), e.g. ``table("table2_linear")``."""
    spec = tables()[name]
    if "rows" not in spec:
        raise KeyError(f"{name} is not a row table; read tables()[{name!r}] directly")
    return pd.DataFrame.from_dict(spec["rows"], orient="index", columns=spec["columns"])
