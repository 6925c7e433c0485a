"""Runner notebooks through papermill and the batch runner: skip, resume after a kill, failures."""
import json
import subprocess
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from conftest import env_with, params_copy, revisit
from revisit.bootstrap import Predictions
from revisit.rundir import predictions_file


def book_runs():
    from revisit.batch import book_runs
    from revisit.config import load_profile

    return book_runs(load_profile("smoke"))


def run_dirs(root):
    return sorted(p for p in (Path(root) / "smoke").iterdir() if p.is_dir())


def test_batch_executes_the_book_runs_in_dependency_order(smoke_runs):
    root, _, proc = smoke_runs
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
    order = [ln.split()[1] for ln in lines]
    assert order.index("pretrain/moco_coco_400ep") < order.index("linear/table2_coco")
    started = [ln.split()[1] for ln in lines if ": running in " in ln]
    training = ("pretrain/", "supervised/")  # MoCo and the supervised ceilings
    first_evaluation = next(i for i, name in enumerate(started) if not name.startswith(training))
    assert all(name.startswith(training) for name in started[:first_evaluation])
    assert not any(name.startswith(training) for name in started[first_evaluation:])  # pretraining first
    n = len(book_runs())
    assert n >= 80  # Sections 3-4 and Appendix C: pretraining, linear and dense-transfer runs
    assert f"{n} run, 0 already done, 0 failed" in proc.stdout
    dirs = run_dirs(root)
    assert len(dirs) == n
    for d in dirs:
        assert (d / "metrics.json").is_file() and (d / "params.yaml").is_file()
        environment = json.loads((d / "metrics.json").read_text())["environment"]  # what it ran on, and when
        assert environment["torch"] == torch.__version__ and environment["started"] <= environment["finished"]
        notebook = json.loads((d / "notebook.ipynb").read_text())
        tags = [tag for cell in notebook["cells"] for tag in cell.get("metadata", {}).get("tags", [])]
        assert "injected-parameters" in tags  # papermill executed it with this run's parameters
    linear = json.loads(next(d for d in dirs if "table2_coco" in d.name).joinpath("metrics.json").read_text())
    assert set(linear["targets"]) == {"cifar10", "cars", "food", "pets", "places_sgd", "sun", "voc"}
    assert all(0 <= t["test"] <= 100 for t in linear["targets"].values())
    coco = next(d for d in dirs if "table2_coco" in d.name)
    for target, found in linear["targets"].items():  # every score with its interval and the predictions behind it
        assert found["interval"][0] <= found["interval"][1], target
        assert Predictions.load(predictions_file(coco, target)).value() == pytest.approx(found["test"]), target


def test_ceilings_train_with_labels_and_bound_their_tables(smoke_runs, monkeypatch):
    """The supervised ceilings run through papermill like any pretraining, their backbones are evaluated, and every
    column of Tables 2 and 4 gets a floor, a ceiling and a verdict on whether it can discriminate."""
    from revisit.config import load_profile
    from revisit.results import CEILING, TABLE2, table_ranges

    root, _, _ = smoke_runs
    monkeypatch.setenv("REVISIT_RUNS", str(root))
    dirs = run_dirs(root)
    trained = next(d for d in dirs if d.name.startswith("supervised__in118k_400ep--"))
    summary = json.loads((trained / "metrics.json").read_text())
    assert summary["steps"] > 0 and 0 <= summary["final_acc"] <= 1 and (trained / "backbone.pt").is_file()
    linear = json.loads(next(d for d in dirs if d.name.startswith("linear__table2_supervised--"))
                        .joinpath("metrics.json").read_text())
    assert linear["backbone"] == str(trained) and set(linear["targets"]) == set(TABLE2)
    profile = load_profile("smoke")
    ranges = table_ranges([({"rand": "linear/table2_random_init", CEILING: "linear/table2_supervised"}, TABLE2)],
                          profile, "rand")
    assert len(ranges) == 7 and ranges["verdict"].isin(["discriminates", "cannot discriminate at this profile"]).all()
    dense = table_ranges([({"rand": "transfer/table4/random_init", CEILING: "transfer/table4/supervised"},
                           ("voc_seg", "cityscapes_seg", "nyud_seg"))], profile, "rand")
    assert dense["constant"].notna().all() and dense["ceiling"].notna().all()


def test_rerun_skips_finished_runs_and_touches_nothing(smoke_runs):
    root, env, _ = smoke_runs
    before = {p: p.stat().st_mtime_ns for d in run_dirs(root) for p in d.iterdir()}
    proc = revisit("batch", "--profile", "smoke", env=env)
    assert proc.returncode == 0 and f"0 run, {len(book_runs())} already done" in proc.stdout
    assert before == {p: p.stat().st_mtime_ns for d in run_dirs(root) for p in d.iterdir()}
    status = revisit("status", "--profile", "smoke", env=env)
    assert status.stdout.count("done") == len(book_runs())


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_failed_run_is_reported_and_the_batch_goes_on(tmp_path, jobs):
    params = params_copy(tmp_path, norealdata={"pretrain": {"source": "real"}})
    env = env_with(REVISIT_PARAMS=params, REVISIT_RUNS=tmp_path / "runs", DATA_ROOT=tmp_path / "empty")
    proc = revisit("batch", "--profile", "norealdata", "--jobs", jobs, "linear/table2_in118k",
                   "linear/table2_random_init", env=env)
    assert proc.returncode == 1
    assert "1 run, 0 already done, 1 failed, 1 blocked" in proc.stdout  # random init still ran
    error = next((tmp_path / "runs" / "norealdata").glob("pretrain__*/error.txt")).read_text()
    assert "DatasetNotFoundError" in error and "imagenet" in error and "DATA_ROOT" in error


def test_changed_params_make_a_new_run(tmp_path, monkeypatch):
    from revisit.config import load_profile
    from revisit.runs import plan

    monkeypatch.setenv("REVISIT_PARAMS", str(params_copy(tmp_path, other={"linear": {"grid_size": 3}})))
    a = plan("linear/table2_coco", load_profile("smoke"))
    b = plan("linear/table2_coco", load_profile("other"))
    assert a.run_id != b.run_id and a.needs.run_id == b.needs.run_id  # same pretraining, new evaluation


def test_sec4_runs_record_their_protocols_and_views(smoke_runs):
    root, _, _ = smoke_runs
    dirs = run_dirs(root)
    table4 = json.loads(next(d for d in dirs if d.name.startswith("linear__table4__mc_cc_mlow_aplus_nn--"))
                        .joinpath("metrics.json").read_text())
    assert set(table4["targets"]) == {"voc_svm", "imagenet_sgd", "places_sgd"}
    assert len(table4["targets"]["voc_svm"]["per_class"]) == 10 and table4["targets"]["imagenet_sgd"]["train_loss"]
    pretrain = next(d for d in dirs if d.name.startswith("pretrain__coco200__mc_cc_mlow_aplus_nn--"))
    records = [json.loads(line) for line in (pretrain / "metrics.jsonl").read_text().splitlines()]
    assert any(r["loss_nn"] > 0 for r in records) and sum(r["rejected"] for r in records) > 0
    params = yaml.safe_load((pretrain / "params.yaml").read_text())["params"]
    assert params["small_crops"] == 4 and params["policy"] == "mixed" and params["momentum"] == 0.95


def test_transfer_runs_record_every_task_and_the_figures_material(smoke_runs):
    root, _, _ = smoke_runs
    dirs = run_dirs(root)
    table3 = next(d for d in dirs if d.name.startswith("transfer__table3__coco--"))
    metrics = json.loads((table3 / "metrics.json").read_text())["tasks"]
    assert set(metrics) == {"voc_seg", "cityscapes_seg", "nyud_seg", "voc_det", "davis", "nyud_depth"}
    assert all(0 <= metrics[t]["value"] <= 100 for t in metrics if t != "nyud_depth")
    assert metrics["nyud_depth"]["value"] > 0 and metrics["voc_det"]["details"]["backend"] == "torchvision"
    assert sorted(p.stem for p in (table3 / "tasks").glob("*.json")) == sorted(metrics)
    for task in metrics:  # each with its bootstrap material
        low, high = metrics[task]["interval"]  # a percentile interval: it need not hold the value (a biased score)
        assert low <= high, task
        saved = Predictions.load(predictions_file(table3, task))
        assert saved.value() == pytest.approx(metrics[task]["value"]) and len(saved) == metrics[task]["n_test"], task
    mc = next(d for d in dirs if d.name.startswith("transfer__table4__mc--"))
    for figure in ("cams.npz", "davis_example.npz", "retrieval_examples.npz"):
        assert (mc / figure).is_file(), figure
    assert list((mc / "davis").glob("*/*.png"))  # DAVIS results layout: <sequence>/<frame>.png
    params = yaml.safe_load((mc / "params.yaml").read_text())
    assert params["pretrain_run"].startswith("pretrain__coco200__mc--")


def test_batch_runs_one_section_and_rejects_an_unknown_one(smoke_runs):
    root, env, _ = smoke_runs
    status = revisit("status", "--profile", "smoke", "--section", "section4_2_augment", env=env)
    assert status.returncode == 0
    assert [ln.split()[1] for ln in status.stdout.splitlines()] == [  # Table 7's rows, the floor and ceiling of its
        "pretrain/coco200/mc_cc_mlow", "linear/table4/mc_cc_mlow",  # column, each after its pretraining
        "pretrain/coco200/mc_cc_mlow_autoaugment", "linear/table7/autoaugment",
        "pretrain/coco200/mc_cc_mlow_aplus", "linear/table4/mc_cc_mlow_aplus",
        "linear/table4/random_init", "supervised/coco_200ep", "linear/table4/supervised"]
    bad = revisit("batch", "--profile", "smoke", "--section", "section4_2", env=env)
    assert bad.returncode == 2 and "unknown page(s) ['section4_2']" in bad.stderr
    assert "section4_2_augment" in bad.stderr  # the pages it takes


def test_the_seeded_runs_execute_at_every_seed_of_the_profile(smoke_runs, tmp_path):
    """book.yaml's ``seeds`` runs come with their replicas (smoke: 2 seeds), each pretrained at its own seed and
    evaluated on the same test images; a seeded run that no page lists is refused."""
    import dataclasses

    from revisit.batch import book_experiments
    from revisit.config import ParamsError, load_profile

    root, env, _ = smoke_runs
    status = revisit("status", "--profile", "smoke", "linear/table2_coco@seed1", env=env)
    assert status.returncode == 0
    assert [ln.split()[:2] for ln in status.stdout.splitlines()] == [
        ["done", "pretrain/moco_coco_400ep@seed1"], ["done", "linear/table2_coco@seed1"]]
    base, replica = (yaml.safe_load(next(Path(root, "smoke").glob(f"pretrain__moco_coco_400ep{tag}--*/params.yaml"))
                                    .read_text()) for tag in ("", "@seed1"))
    assert replica["params"]["seed"] == base["params"]["seed"] + 1 and replica["experiment"].endswith("@seed1")
    three = book_experiments(dataclasses.replace(load_profile("smoke"), seeds=3))["section4_1_multicrop"]
    assert [n for n in three if n.startswith("linear/table4/moco")] == [
        "linear/table4/moco", "linear/table4/moco@seed1", "linear/table4/moco@seed2"]
    assert "linear/table4/mc@seed1" not in three
    params = params_copy(tmp_path)
    with open(params / "book.yaml", "a") as book:
        book.write("  - linear/table7/autoaugment_elsewhere\n")
    with pytest.raises(ParamsError, match="no page lists"):
        book_experiments(load_profile("smoke"), root=params)


def test_the_book_list_gives_each_page_its_tables_and_refuses_a_malformed_one(tmp_path):
    """params/book.yaml: a page's runs by table (labels as YAML reads them: 20 is an int, 0.4 a float), each run once
    in the batch's list; a group that does not map labels to params names, or an unknown page, is named in the error."""
    from revisit import book
    from revisit.config import ParamsError

    listing = book.read()
    tables = listing.tables("section4_3_neighbours")
    assert tables["table8_k"][20] == tables["table8_lambda"][0.4] == "linear/table8/nn"
    runs = listing.runs("section4_3_neighbours")
    assert runs.count("linear/table8/nn") == 1 and runs.index("linear/table8/nn_k1") == 0
    with pytest.raises(ParamsError, match="no page 'section4_3'.*section4_3_neighbours"):
        listing.tables("section4_3")
    (tmp_path / "book.yaml").write_text("section4_3_neighbours:\n  table8_k:\n    - linear/table8/nn_k1\n")
    with pytest.raises(ParamsError, match="section4_3_neighbours.table8_k must map row labels to params names"):
        book.read(tmp_path)
    (tmp_path / "book.yaml").write_text("section4_3_neighbours:\n  table8_k:\n    1: a\n   - b\n")
    with pytest.raises(ParamsError, match="book.yaml: cannot read the book's run list"):
        book.read(tmp_path)


def test_stopping_a_child_run_ends_its_whole_process_group():
    from revisit.batch import _stop

    child = subprocess.Popen(["bash", "-c", "sleep 60 & sleep 60"], start_new_session=True)
    grandchildren = psutil.Process(child.pid).children(recursive=True)
    _stop(child, grace=5)
    assert child.poll() is not None
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in grandchildren)
