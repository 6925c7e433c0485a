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
# # Runner: linear evaluation
#
# Executed by papermill (`revisit batch`) into the run's folder. Frozen features of the
# pretrained backbone (or of a random initialisation), evaluated on each target with its protocol
# (App. A.2): logistic regression with the L2 constant chosen on validation (Table 2), the VOC07
# SVM (`voc_svm`) or the SGD linear layer (`imagenet_sgd`, `places_sgd`). With `snapshot_targets`,
# the backbones kept along pretraining are evaluated too (Figure 5). `metrics.json` is written last.

# %% tags=["parameters"]
experiment = "linear/table2_in118k"
profile = "smoke"

# %%
import pandas as pd
import torch

from revisit.backbones import build_backbone, evaluated_backbone
from revisit.config import load_profile
from revisit.environment import begin
from revisit.linear import evaluate
from revisit.rundir import predictions_file, write_metrics
from revisit.runs import plan
from revisit.train import snapshots

begun = begin()
run = plan(experiment, load_profile(profile))
p = run.params
backbone, source, device = evaluated_backbone(run)
print(f"{run.experiment.title} | profile {profile} | backbone: {source}")

# %%
results = {}
for target in p.targets:
    r = results[target] = evaluate(target, backbone, p, device)
    r.predictions.save(predictions_file(run.dir, target))  # what the pages' bootstrap and paired tests read
    low, high = r.record()["interval"]
    print(f"{target:14s} {r.metric:18s} {r.test:6.1f}  95% interval [{low:.1f}, {high:.1f}]")

# %%
pd.DataFrame([{"target": r.target, "metric": r.metric, "test": r.test, "95% interval": r.interval,
               "C": r.best_C[0] if len(r.best_C) == 1 else ("per class" if r.best_C else "-"),
               "train/val/test": f"{r.n_train}/{r.n_val}/{r.n_test}"} for r in results.values()])

# %% [markdown]
# Snapshots along pretraining (only when the params name `snapshot_targets`): those evaluations of
# each kept backbone, with the training time it had cost.

# %%
along = []
if p.snapshot_targets and run.needs is not None:
    for path in snapshots(run.needs.dir):
        snap = torch.load(path, map_location="cpu", weights_only=True)
        net = build_backbone(p.arch, p.width)
        net.load_state_dict(snap["backbone"])
        scores = {t: evaluate(t, net, p, device).test for t in p.snapshot_targets}
        along.append({"epoch": int(snap["epoch"]), "train_seconds": float(snap["train_seconds"]), **scores})
        print(along[-1])
pd.DataFrame(along)

# %%
write_metrics(run.dir, {"experiment": experiment, "profile": profile, "backbone": str(source),
                        "targets": {t: r.record() for t, r in results.items()}, "snapshots": along,
                        "skipped_images": sum(r.skipped_images for r in results.values())}, begun)
