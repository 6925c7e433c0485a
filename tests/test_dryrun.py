"""The dry run of the paper profile: every kind of pretraining trained for two steps at the paper's shapes
(ResNet-50, 224 / 160 + 4 x 96 px crops, K = 65536) at a small batch, every kind of evaluation work (features,
finetuning and detection steps) timed at the recipes' sizes, and the book's hours projected."""
import pytest

from revisit.batch import book_runs
from revisit.config import PRETRAINING, load_profile
from revisit.dryrun import dry_run, evaluation_dry_run, kind, report
from revisit.runs import plan


@pytest.fixture(scope="module")
def paper_pretraining():
    lines = []
    return dry_run(load_profile("paper"), batch=2, steps=2, device="cpu", echo=lines.append), lines


def test_the_paper_profiles_dry_run_measures_every_kind_and_projects_each_run(paper_pretraining):
    profile = load_profile("paper")
    table, lines = paper_pretraining
    book = [r.name for r in book_runs(profile) if r.experiment.kind in PRETRAINING]
    assert sorted(table.index) == sorted(book)  # every pretraining run of the book, once
    assert len(lines) == table["kind"].nunique() >= 8  # one trial per kind, each printed as it finishes
    assert (table["measured at batch"] == 2).all() and table["peak GiB"].isna().all()  # no accelerator here
    assert (table["s/step"] > 0).all()
    moco = table.loc["pretrain/moco_in118k_400ep"]  # 118,000 images, 400 epochs, batch 256
    assert moco["steps"] == 400 * (118_000 // 256) == 184_000
    assert moco["kind"] == "MoCo resnet50 224 px, standard"
    nn = plan("pretrain/coco200/mc_cc_mlow_nn", profile)
    assert kind(nn) == "MoCo resnet50 160 px + 4 x 96 px, CC, standard, kNN"
    text = report(table)
    assert "hours on this CPU" in text and text.splitlines()[-1].startswith("pretraining, all runs")
    assert f"{table['hours'].sum():,.0f}" in text.splitlines()[-1]


def test_the_paper_profiles_evaluations_are_timed_at_the_recipes_sizes_and_projected(paper_pretraining):
    profile = load_profile("paper")
    lines = []
    work = evaluation_dry_run(profile, batch=1, steps=1, device="cpu", echo=lines.append)
    book = {r.name for r in book_runs(profile) if r.experiment.kind in ("linear", "transfer")}
    assert set(work["run"]) == book and len(lines) == work["kind"].nunique()  # each kind measured once
    assert (work["s/unit"] > 0).all() and (work["count"] > 0).all() and work["peak GiB"].isna().all()  # no GPU
    moco = work[work["run"] == "linear/table4/moco"]  # VOC07 SVM, then 100 SGD epochs on ImageNet and on Places
    assert moco["count"].sum() == (5_011 + 4_952) + (100 * 1_281_167 + 50_000) + (100 * 1_803_460 + 36_500)
    assert set(moco["kind"]) == {"frozen resnet50 features, 224 px"}
    coco = work[work["run"] == "transfer/table3/coco"].set_index("kind")["count"]
    assert coco["voc_seg training resnet50, 513 px, batch 16"] == 5 * 45 * (10_582 // 16)  # App. A.3: about 30k,
    # five runs (the authors' code)
    assert coco["voc_det training resnet50, 800 px, batch 16"] == 24_000
    assert coco["frozen resnet50 features, 480 px"] == 1_999  # DAVIS-2017 val's frames
    pretraining = paper_pretraining[0]
    text = report(pretraining, work).splitlines()
    assert text[-2].startswith("evaluations, all runs") and text[-1].startswith("the book")
    total = pretraining["hours"].sum() + work["hours"].sum()
    assert text[-1].endswith(f"{total:,.0f}")


def test_the_gpu_profile_passes_the_dry_run():
    """Profile gpu (ResNet-18 at 64 px on the twins), not yet run on a GPU: every kind trains at its shapes."""
    profile = load_profile("gpu")
    table = dry_run(profile, batch=2, steps=2, device="cpu", echo=lambda line: None)
    assert len(table) == len([r for r in book_runs(profile) if r.experiment.kind in PRETRAINING])
    assert table["kind"].str.startswith(("MoCo resnet18 64 px", "MoCo resnet18 46 px + 4 x 27 px",
                                         "supervised resnet18 64 px")).all()
    assert (table["s/step"] > 0).all() and table["hours"].notna().all()
    assert table.loc["pretrain/moco_in118k_400ep", "steps"] == 40 * (10_000 // 256)
    work = evaluation_dry_run(profile, batch=2, steps=1, device="cpu", echo=lambda line: None)
    assert set(work["run"]) == {r.name for r in book_runs(profile) if r.experiment.kind in ("linear", "transfer")}
    assert (work["s/unit"] > 0).all() and work["kind"].str.contains("resnet18").all()
