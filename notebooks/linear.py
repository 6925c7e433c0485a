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
# pretrained backbone (or of a random initialisation), one multinomial logistic regression per
# target with its L2 constant chosen on validation (App. A.2), then `metrics.json`.

# %% tags=["parameters"]
experiment = "linear/table2_in118k"
profile = "smoke"

# %%
import dataclasses

import pandas as pd
import torch

from revisit.backbones import build_backbone, load_backbone
from revisit.config import load_profile
from revisit.data import target_splits
from revisit.linear import c_grid, evaluate_backbone
from revisit.runs import METRICS, plan, write_json_atomic
from revisit.train import BACKBONE

run = plan(experiment, load_profile(profile))
p = run.params
device = "cuda" if torch.cuda.is_available() else "cpu"
if run.needs is None:
    torch.manual_seed(p.seed)
    backbone, source = build_backbone(p.arch, p.width), "random initialisation"
else:
    backbone, source = load_backbone(run.needs.dir / BACKBONE, p.arch, p.width), run.needs.dir
print(f"{run.experiment.title} | profile {profile} | backbone: {source}")

# %%
Cs = c_grid(p.grid, p.grid_size)
results = {}
for target in p.targets:
    splits = target_splits(target, p)
    results[target] = evaluate_backbone(backbone, splits, target, p.image_size, Cs, p.max_iter, p.batch_size,
                                        p.workers, device, progress=False)
    print(f"{target:8s} {results[target].metric:18s} {results[target].test:6.1f}")

# %%
pd.DataFrame([{"target": r.target, "metric": r.metric, "test": r.test, "C": r.best_C[0] if len(r.best_C) == 1 else "per class",
               "train/val/test": f"{r.n_train}/{r.n_val}/{r.n_test}"} for r in results.values()])

# %%
write_json_atomic(run.dir / METRICS, {"experiment": experiment, "profile": profile,
                                      "backbone": str(source),
                                      "targets": {t: dataclasses.asdict(r) for t, r in results.items()},
                                      "skipped_images": sum(r.skipped_images for r in results.values())})
