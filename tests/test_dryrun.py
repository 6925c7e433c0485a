"""The dry run of the paper profile: every kind of pretraining trained for two steps at the paper's shapes
(ResNet-50, 224 / 160 + 4 x 96 px crops, K = 65536) at a small batch, and the book's hours projected."""
from revisit.batch import book_runs
from revisit.config import PRETRAINING, load_profile
from revisit.dryrun import dry_run, kind, report
from revisit.runs import plan


def test_the_paper_profiles_dry_run_measures_every_kind_and_projects_each_run():
    profile = load_profile("paper")
    lines = []
    table = dry_run(profile, batch=2, steps=2, device="cpu", echo=lines.append)
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
    text = report(table, "cpu")
    assert "hours on this CPU" in text and text.splitlines()[-1].startswith("pretraining, all runs")
    assert f"{table['hours'].sum():,.0f}" in text.splitlines()[-1]
