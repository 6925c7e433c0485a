"""The discrepancies page names every key where a book profile departs from the paper (issue: make it hard to forget
one). A key departs when a profile scales it, sets it to another value than the paper's default, or sets it for some
experiments; keys that only place work on the machine cannot change a number and need no entry."""
import dataclasses

import pytest
import yaml

from revisit.config import PROJECT_ROOT, KINDS, params_root

PAGE = PROJECT_ROOT / "book" / "discrepancies.md"
BOOK_PROFILES = ("cpu", "gpu")  # smoke is for tests only
MACHINE_ONLY = {"workers", "threads", "log_every"}  # where and how fast, never what is computed


def default(cls, key):
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def departures(profile: str) -> set[str]:
    data = yaml.safe_load((params_root() / "profiles" / f"{profile}.yaml").read_text())
    keys = set(data.get("scale") or {})
    for kind in ("pretrain", "linear", "transfer"):
        for key, value in (data.get(kind) or {}).items():
            if plain(value) != plain(default(KINDS[kind], key)):
                keys.add(key)
    for values in (data.get("experiments") or {}).values():
        keys |= set(values)
    return keys - MACHINE_ONLY


def profile_rows() -> dict[str, list[str]]:
    """The table of the page's profile section: key -> its cells (paper, one per book profile, why)."""
    text = PAGE.read_text()
    lines = text[text.index("## Profile keys"):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| key |")) + 2  # past the header's rule
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for key in cells[0].replace("`", "").split(","):
            rows[key.strip()] = cells[1:]
    return rows


@pytest.mark.parametrize("profile", BOOK_PROFILES)
def test_every_key_a_profile_departs_on_has_an_entry(profile):
    rows, column = profile_rows(), 1 + BOOK_PROFILES.index(profile)
    keys = departures(profile)
    assert {"epochs", "arch", "source"} <= keys  # the check itself sees the obvious ones
    missing = sorted(k for k in keys if k not in rows)
    assert not missing, f"book/discrepancies.md, 'Profile keys': no row for {missing} (profile {profile})"
    unsaid = sorted(k for k in keys if rows[k][column] in ("", "paper", "-"))
    assert not unsaid, f"book/discrepancies.md, 'Profile keys': the {profile} column says nothing for {unsaid}"
    assert all(rows[k][-1] for k in keys), "every row says why and what it changes"
