"""The book: built at the smoke profile with Table 2 filled in, the README's ablation example, and a failing notebook
fails it."""
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
from bs4 import BeautifulSoup
from nbclient import NotebookClient

from conftest import params_copy, revisit
from revisit.config import PROJECT_ROOT, load_profile
from revisit.environment import git_state
from revisit.runs import plan

JUPYTER_BOOK = str(Path(sys.executable).with_name("jupyter-book"))


def build(source, output, env):
    return subprocess.run([JUPYTER_BOOK, "build", str(source), "--path-output", str(output)], env=env,
                          capture_output=True, text=True, timeout=900)


def test_book_builds_at_smoke_profile_with_table2(smoke_runs, tmp_path):
    _, env, batch = smoke_runs
    assert batch.returncode == 0
    proc = build(PROJECT_ROOT, tmp_path, {**env, "REVISIT_PROFILE": "smoke"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (tmp_path / "_build" / "html" / "notebooks" / "section3_datasets.html").read_text()
    assert "Table 2" in page and "profile <code" in page and "smoke" in page
    assert "_static/revisit.css" in page  # wide tables scroll sideways
    assert "Show code cell source" in page  # the code behind each table is hidden, one click away
    assert "not in paper" in page and "83.1" in page  # the paper's IN-118K CIFAR10 number beside ours
    assert "are missing" not in page  # every cell of Tables 2-3 and Figure 3 came from a finished run
    assert page.count(" ±") >= 35 + 21 + 4  # Tables 2 and 3: every cell of ours with its margin
    assert "claims on Table 2, checked" in page and "claims checked here" in page
    assert "untested" not in page.split("claims on Table 2")[1].split("Table 3 at profile")[0]  # all have predictions
    prose = " ".join(BeautifulSoup(page, "html.parser").get_text(" ").split())
    assert re.search(r"pairs, \d+\.\d\d ?% do not overlap at all", prose), "Figure 1's glued numbers are not in the prose"
    assert page.count("<img") >= 4
    assert page.count("Supervised (ceiling)") >= 2 and "discriminate" in page  # Tables 2-3: floor and ceiling rows
    twins = (tmp_path / "_build" / "html" / "notebooks" / "twins.html").read_text()
    assert "Floor and ceiling of each column" in twins and "What was tuned" in twins and twins.count("<img") >= 2
    assert "Table S1" in twins and "NYUD_depth_rmse" in twins
    assert (tmp_path / "_build" / "html" / "book" / "discrepancies.html").is_file()
    references = (tmp_path / "_build" / "html" / "book" / "references.html").read_text()
    assert "momentum contrast" in references.lower() and "space-time correspondence" in references.lower()
    assert 'href="../book/references.html#id' in page  # the page's citations link to the bibliography
    table4 = (tmp_path / "_build" / "html" / "notebooks" / "section4_1_multicrop.html").read_text()
    assert "Table 4" in table4 and "85.1" in table4 and "cells are missing" not in table4  # paper's +NN VOC mAP
    assert "claims on Table 4" in table4 and "each step against the row before" in table4

    table7 = (tmp_path / "_build" / "html" / "notebooks" / "section4_2_augment.html").read_text()
    assert "Table 7" in table7 and "79.9" in table7 and "are missing" not in table7
    assert "Table 3 at profile" in page and "Detection backend: <strong>torchvision" in page
    for table in ("Table 5: DAVIS-2017", "Table 6: VOC segment retrieval", "Figure S4"):
        assert table in table4
    assert "are missing" not in table4
    table9 = (tmp_path / "_build" / "html" / "notebooks" / "section4_4_sota.html").read_text()
    assert "Table 9, profile" in table9 and "are missing" not in table9
    s1 = (tmp_path / "_build" / "html" / "notebooks" / "appendix_c_size.html").read_text()
    assert "Table S1 at profile" in s1 and "are missing" not in s1 and "75.0" in s1  # paper's IN-118K x8 VOC


def test_a_failing_notebook_fails_the_build(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(PROJECT_ROOT / "_config.yml", book)
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "broken.py").write_text("# %% [markdown]\n# # Broken\n\n# %%\nraise RuntimeError('this page is broken')\n")
    proc = build(book, tmp_path / "out", None)
    assert proc.returncode != 0
    assert "this page is broken" in proc.stdout + proc.stderr


def test_the_readme_ablation_example_adds_a_row_to_table_8(smoke_runs, tmp_path, monkeypatch):
    """README's "Adding an ablation" to the letter, at the smoke profile: the batch runs the two new runs only, and
    Table 8's page shows k = 100 with our score and "-" in the paper's column (the paper did not train it)."""
    root, env, _ = smoke_runs
    steps = (PROJECT_ROOT / "README.md").read_text().split("## Adding an ablation")[1].split("\n## ")[0]
    params = params_copy(tmp_path)
    (params / "pretrain/coco200/mc_cc_mlow_nn_k100.yaml").write_text(
        textwrap.dedent(steps.split("```yaml\n")[1].split("```")[0]))  # step 1's params file, as printed
    assert "`kind: linear`" in steps and "`targets: [voc_svm]`" in steps
    (params / "linear/table8/nn_k100.yaml").write_text(
        "kind: linear\npretrain: pretrain/coco200/mc_cc_mlow_nn_k100\ntargets: [voc_svm]\n")
    line = "100: linear/table8/nn_k100"
    assert f"`{line}` under `section4_3_neighbours:`, in the group `table8_k:`" in steps  # step 2, as printed
    book = (params / "book.yaml").read_text()
    assert "  table8_k:  # lambda 0.4\n" in book
    (params / "book.yaml").write_text(book.replace("    50: linear/table8/nn_k50\n",
                                                   f"    50: linear/table8/nn_k50\n    {line}\n", 1))
    runs = tmp_path / "runs"
    shutil.copytree(root, runs)
    env = {**env, "REVISIT_PARAMS": str(params), "REVISIT_RUNS": str(runs)}
    batch = revisit("batch", "--profile", "smoke", "--section", "section4_3_neighbours", env=env)
    assert batch.returncode == 0, batch.stdout[-2000:] + batch.stderr[-2000:]
    assert "\n2 run, " in batch.stdout and "0 failed" in batch.stdout  # the pretraining and its evaluation, only

    page = jupytext.read(PROJECT_ROOT / "notebooks" / "section4_3_neighbours.py")  # the page as it is
    for key, value in (("REVISIT_PROFILE", "smoke"), ("REVISIT_PARAMS", params), ("REVISIT_RUNS", runs)):
        monkeypatch.setenv(key, str(value))
    NotebookClient(page, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    html = [out["data"]["text/html"] for cell in page.cells for out in cell.get("outputs", [])
            if "Table 8, k sweep" in out.get("data", {}).get("text/html", "")]
    assert len(html) == 1
    rows = [[cell.get_text(strip=True) for cell in tr.find_all(["th", "td"])]
            for tr in BeautifulSoup(html[0], "html.parser").find("table").find_all("tr")]
    header, = [row for row in rows if "50" in row]
    ours, = [row for row in rows if "ours" in row]
    paper, = [row for row in rows if "paper" in row]
    assert header[-2:] == ["50", "100"]  # the new column, after k = 50
    assert all(float(cell) >= 0 for cell in ours[-6:])  # every k with our score, k = 100 included
    assert paper[-6:] == ["83.6", "84.0", "84.1", "84.2", "84.3", "-"]  # the paper's by k; none at k = 100
    provenance = [out["data"]["text/html"] for cell in page.cells for out in cell.get("outputs", [])
                  if "params/linear/table8/nn_k100.yaml" in out.get("data", {}).get("text/html", "")]
    assert len(provenance) == 1 and "<details" in provenance[0]  # the new run's id and state under the table
    assert plan("linear/table8/nn_k100", load_profile("smoke")).run_id in provenance[0]
    commit = git_state()["commit"]  # the code that ran it (None outside a git checkout)
    assert commit is None or f"<td>{commit[:10]}" in provenance[0]
