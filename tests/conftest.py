"""Shared fixtures: every test gets its own runs folder and twin cache, never the project's."""
import pytest


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REVISIT_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("REVISIT_CACHE", str(tmp_path_factory.getbasetemp() / "twin-cache"))
