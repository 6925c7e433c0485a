# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # C. Larger pretraining sets
#
# Appendix C grows IN-118K (object-centric) and OI-118K (scene-centric) by a factor of 2, 4 and 8
# and transfers each model to the dense tasks of {ref}`Table 3 <table-3>` ({ref}`Table S1 <table-s1>`).
# The paper draws two conclusions: more data helps with diminishing returns, and ImageNet keeps no advantage over OpenImages at any
# size. Each row below is one MoCo-v2 run (`params/pretrain/tableS1/`) and one dense-transfer run
# (`params/transfer/tableS1/`).

# %% tags=["remove-cell"]
import os

import pandas as pd
from IPython.display import Markdown, display

from revisit import page, paper
from revisit.config import load_profile
from revisit.plots import size_series
from revisit.results import (LOWER_IS_BETTER, beside, blind, blind_note, constant_floors, floor_summary, measure,
                             significant, styled, table_ranges, tally, uncertainty_note)
from revisit.runs import plan

PROFILE = os.environ.get("REVISIT_PROFILE", "cpu")
profile = load_profile(PROFILE)
RUNS = page.runs("appendix_c_size")  # params/book.yaml: this page's runs by table
TRANSFER, BOUNDS = RUNS["tableS1"], RUNS["bounds"]  # rows "<set>_x<factor>"
SETS = list(dict.fromkeys(label.rsplit("_x", 1)[0] for label in TRANSFER))  # IN-118K, OI-118K
FACTORS = sorted({int(label.rsplit("_x", 1)[1]) for label in TRANSFER})  # 1, 2, 4, 8
PRETRAIN = page.pretraining(TRANSFER, profile)
DENSE = ("voc_seg", "cityscapes_seg", "nyud_seg", "davis", "nyud_depth")
DIGITS = {"NYUD_depth_rmse": 3}

# %% tags=["hide-input"]
sizes = pd.DataFrame({label: {"images": plan(name, profile).params.images, "epochs": plan(name, profile).params.epochs}
                      for label, name in PRETRAIN.items()})
page.banner(profile)
display(sizes.style.set_caption("Pretraining set size and epochs of each run at this profile"))

# %% [markdown]
# (table-s1)=
# ## Table S1
#
# Brackets give the difference to each dataset's x1 model, as the paper prints them. Depth is an rmse
# in metres (lower is better).

# %% tags=["hide-input"]
measured = {label: measure([({k: v for k, v in TRANSFER.items() if k.startswith(label)}, DENSE)], profile, f"{label}_x1")
            for label in SETS}
ours = pd.concat([m.scores for m in measured.values()])
ref = paper.table("tableS1_size")
tables = [beside(m.scores, ref.filter(like=label, axis=0), f"{label}_x1", DIGITS, m.margins, m.differences)
          for label, m in measured.items()]
rangesS1 = table_ranges([(BOUNDS, DENSE)], profile, "Rand. init.")
display(styled(pd.concat(tables), blind(rangesS1), f"Table S1 at profile '{profile.name}' (ours) beside the paper"))
display(Markdown(uncertainty_note("each dataset's x1 model") + " " + blind_note(rangesS1)))
display(rangesS1.style.format(precision=1, na_rep="-").format(precision=3, subset=pd.IndexSlice[["NYUD_depth_rmse"], :])
        .set_caption("Each column's floor (constant prediction, random init.) and ceiling (the backbone trained with "
                     "IN-118K's labels for the x1 models' steps); range: the ceiling's margin over the better floor"))

display(Markdown(floor_summary(ours, constant_floors(TRANSFER, profile, DENSE))))
page.missing(ours, profile, "appendix_c_size")
page.provenance(profile, TRANSFER, BOUNDS)

# %% [markdown]
# The same numbers against the dataset's size, as the gain over each dataset's x1 model (for depth,
# the rmse reduction), so that ours (solid) and the paper's (dashed) share one scale: a line rising to
# the right means more data helped.

# %% tags=["hide-input"]
size_series(ours, ref, list(SETS), FACTORS);

# %% [markdown]
# ## What the twins can say
#
# At the CPU profile the series starts from a 500-image twin and keeps the number of steps fixed
# (62 steps of 64 images), so x8 sees each image once where x1 sees it eight times: the table
# measures how more varied data helps at equal compute. The paper's runs, like the `paper` profile,
# keep the epochs (400) and so train x8 eight times longer. See {doc}`../book/discrepancies`.

# %% tags=["hide-input"]
display(pd.concat([tally(significant(m.differences)).loc[[f"{label}_x8"]] for label, m in measured.items()])
        .style.set_caption("x8 against x1: on how many of the 5 columns it is better, level or worse beyond the noise "
                           "(paired bootstrap over test images or videos, 95%)"))
better = (ref.loc[[f"{label}_x8" for label in SETS]].to_numpy() - ref.loc[[f"{label}_x1" for label in SETS]].to_numpy()) \
    * [-1 if col in LOWER_IS_BETTER else 1 for col in ref.columns] > 0
display(Markdown("The paper's x8 models are better than x1 on " +
                 ", ".join(f"{int(n)}/5 columns ({label})" for label, n in zip(SETS, better.sum(axis=1))) +
                 " (no intervals given)."))

