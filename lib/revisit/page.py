"""What every page of the book shows around its tables: its runs, which profile made its numbers, which cells are
missing and where each number comes from.

Each section page reads its runs with ``runs`` (``params/book.yaml``), opens with ``banner`` and follows a table or
figure with ``missing`` and ``provenance``, so the wording and the command that fills a missing cell are the same
everywhere.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from . import book
from .config import Profile
from .runs import plan, replicas


def runs(page: str) -> dict[str, dict]:
    """The runs ``page`` reads, by table or figure: ``{table: {row label: params name}}`` from ``params/book.yaml``."""
    return book.read().tables(page)


def pretraining(group: dict, profile: Profile) -> dict:
    """The pretraining run behind each evaluation of ``group`` (label -> params name); rows without one (random
    init.) are left out."""
    return {label: run.needs.name for label, name in group.items() if (run := plan(name, profile)).needs is not None}


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


def _commit(run) -> str:
    """The short commit a finished run's code came from ("+ changes" where files differed from it), else "-"."""
    git = ((run.metrics() or {}).get("environment") or {}).get("git") or {}
    if not git.get("commit"):
        return "-"
    return git["commit"][:10] + (" + changes" if git.get("dirty") else "")


def provenance(profile: Profile, *groups: dict):
    """A collapsed block under a table: for each row, its params file, run id and state at ``profile`` (the
    replicas at further seeds included) and the commit that ran it, so any number on the page can be traced to its
    run folder and its code."""
    seeded = set(book.read().seeds)
    rows = []
    for group in groups:
        for label, name in group.items():
            for replica in replicas(name, profile.seeds) if name in seeded else [name]:
                run = plan(replica, profile)
                rows.append((f"{label} (seed {run.replica})" if run.replica else label, f"params/{name}.yaml",
                             run.run_id, run.needs.run_id if run.needs else "-", _commit(run), run.status))
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    done = sum(row[-1] == "done" for row in rows)
    display(HTML(f'<details class="provenance"><summary>Provenance: {len(rows)} runs at profile '
                 f'<code>{profile.name}</code>, {done} done (folders under <code>runs/{profile.name}/</code>)</summary>'
                 '<table><tr><th>row</th><th>params</th><th>run id</th><th>pretraining run</th><th>commit</th><th>state</th></tr>'
                 f'{cells}</table></details>'))


def released(profile: Profile, epochs: int, evaluations):
    """The authors' released models of ``epochs`` as evaluated here beside their README's numbers
    (``results.released``), where their runs have finished; nothing otherwise."""
    from .results import released as released_scores

    ours, zoo = released_scores(profile, epochs, evaluations)
    if ours.empty:
        return
    display(pd.concat({"evaluated here": ours, "the authors' README": zoo}, axis=1).style.format(
        precision=1, na_rep="-").set_caption(f"The authors' released {epochs}-epoch models (profile '{profile.name}')"))
