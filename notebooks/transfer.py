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
# # Runner: dense transfer
#
# Executed by papermill (`revisit batch`) into the run's folder. The pretrained backbone (or a
# random initialisation) is transferred to each task of the experiment with the paper's recipe
# (App. A.3-A.7) at the profile's scale: segmentation and depth finetuned end to end, detection
# with Faster R-CNN, DAVIS label propagation and VOC segment retrieval on frozen features, and the
# class activation maps of Figures 6 and S2. Each task's result is saved as it finishes
# (`tasks/<task>.json`), so an interrupted run resumes with the next task; `metrics.json` is last.

# %% tags=["parameters"]
experiment = "transfer/table3/coco"
profile = "smoke"

# %%
import pandas as pd

from revisit.backbones import evaluated_backbone
from revisit.config import load_profile
from revisit.dense import evaluate_tasks
from revisit.environment import begin
from revisit.rundir import write_metrics
from revisit.runs import plan

begun = begin()
run = plan(experiment, load_profile(profile))
p = run.params
backbone, source, device = evaluated_backbone(run)
print(f"{run.experiment.title} | profile {profile} | backbone: {source} | device {device}")

# %%
results = evaluate_tasks(p.tasks, backbone, p, run.dir, device)
pd.DataFrame([{"task": r.task, "metric": r.metric, "value": r.value, "train/test": f"{r.n_train}/{r.n_test}",
               "seconds": round(r.seconds, 1), **{k: v for k, v in r.details.items() if isinstance(v, (int, float, str))}}
              for r in results.values()])

# %%
write_metrics(run.dir, {"experiment": experiment, "profile": profile, "backbone": str(source),
                        "tasks": {t: r.to_json() for t, r in results.items()}}, begun)
