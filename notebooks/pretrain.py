# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Runner: pretraining (MoCo-v2, or a table's supervised ceiling)
#
# Executed by papermill (`revisit batch`) into the run's folder, one copy per run. It trains
# MoCo-v2 (paper Sec. 2-3) on the experiment's dataset at the given profile, or for a `kind: supervised`
# experiment the same backbone with the dataset's labels (`revisit.supervised`), resuming from the
# run's last checkpoint if there is one, and writes `metrics.json` last. Its loss curves are on the
# book's pages (`revisit.plots.loss_curves` of `metrics.jsonl`): plotting here would cost every run
# the import of matplotlib.

# %% tags=["parameters"]
experiment = "pretrain/moco_in118k_400ep"
profile = "smoke"

# %%
from revisit.config import load_profile
from revisit.data import pretrain_images
from revisit.distributed import pretrain_run, processes
from revisit.environment import begin
from revisit.rundir import write_metrics
from revisit.runs import plan

begun = begin()

run = plan(experiment, load_profile(profile))
p = run.params
print(f"{run.experiment.title} | profile {profile} | run {run.dir}")
p

# %%
images = pretrain_images(p, run.dir)
print(f"{len(images)} images from {images.name}")
summary = pretrain_run(run, images)  # one process per visible GPU (DDP), or this one
summary

# %%
write_metrics(run.dir, {**summary, "experiment": experiment, "profile": profile, "dataset": p.dataset,
                        "images": len(images), "processes": processes()}, begun)
