"""``params/book.yaml``: the one list of the runs each page of the book reads, by table.

Each page, named after its notebook under ``notebooks/``, holds groups, one per table or figure, that map the row
label the page shows to a params name; ``seeds`` names the runs repeated at the profile's further training seeds.
``revisit batch`` runs every listed run and what it needs; the pages read their groups (``revisit.page.runs``), so
adding a row to a table is one line here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import ParamsError, params_root

Group = dict  # row label (str, int or float, as the page shows it) -> params name


@dataclass(frozen=True)
class Book:
    pages: dict[str, dict[str, Group]]  # page -> table or figure -> its runs by row label
    seeds: list[str]  # runs replicated at the profile's further seeds
    path: Path

    def runs(self, page: str) -> list[str]:
        """Every params name ``page`` reads, each once, in the order listed."""
        return list(dict.fromkeys(name for group in self.tables(page).values() for name in group.values()))

    def tables(self, page: str) -> dict[str, Group]:
        """The groups of ``page``: table or figure -> its runs by row label."""
        if page not in self.pages:
            raise ParamsError(f"{self.path}: no page {page!r}; pages: {', '.join(self.pages)}")
        return self.pages[page]


def read(root: Path | None = None) -> Book:
    """``book.yaml`` under ``root`` (default: the params folder), checked: pages of groups of label -> name."""
    path = Path(root or params_root()) / "book.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ParamsError(f"{path}: cannot read the book's run list ({err})") from err
    seeds = data.pop("seeds", None) or []
    for page, groups in data.items():
        if not isinstance(groups, dict) or not groups:
            raise ParamsError(f"{path}: page {page!r} must map table names to groups of 'label: params name'")
        for table, group in groups.items():
            if not isinstance(group, dict) or not group or not all(isinstance(v, str) for v in group.values()):
                raise ParamsError(f"{path}: {page}.{table} must map row labels to params names, e.g. "
                                  f"'COCO: linear/table2_coco'; got {group!r}")
    book = Book(data, list(seeds), path)
    listed = {name for page in book.pages for name in book.runs(page)}
    stray = [name for name in book.seeds if name not in listed]
    if stray:
        raise ParamsError(f"{path}: 'seeds' names {stray}, which no page lists; add them to their page's table")
    return book
