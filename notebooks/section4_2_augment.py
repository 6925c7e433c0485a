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
# # 4.2 Stronger augmentations
#
# Can stronger augmentations of the positives help? The paper tries AutoAugment
# {cite}`cubuk2019autoaugment`, a policy found by
# supervised search on ImageNet, on the constrained multi-crop model of {doc}`section4_1_multicrop`.
# It compares three policies for the positives: the standard MoCo-v2 colour pipeline, AutoAugment
# alone, or either at random (A+). The anchor, which feeds the momentum encoder and the queue,
# always gets the standard pipeline. In the paper AutoAugment alone hurts (82.8 to 79.9 VOC mAP),
# because it distorts colour less. Mixing the two helps (83.7).
#
# Our AutoAugment branch follows the official code: AutoAugment (ImageNet policy) and a flip, no
# colour jitter. See `revisit.augment.Views` and {doc}`../book/discrepancies`.

# %% tags=["remove-cell"]
import os

import pandas as pd
from IPython.display import Markdown, display

from revisit import page, paper, plots, verdicts
from revisit.augment import Views, policy_examples
from revisit.config import load_profile
from revisit.data import DatasetNotFoundError, pretrain_images
from revisit.results import (blind, blind_note, differences, linear_scores, margins, table_ranges, uncertainty_note,
                             with_deltas)
from revisit.runs import plan
from revisit.verdicts import Claim

PROFILE = os.environ.get("REVISIT_PROFILE", "cpu")
profile = load_profile(PROFILE)
RUNS = page.runs("section4_2_augment")  # params/book.yaml: this page's runs by table
LINEAR, BOUNDS = RUNS["table7"], RUNS["bounds"]  # Table 4's floor and ceiling bound the VOC SVM column
LABELS = {"standard": "Standard", "autoaugment": "AutoAugment", "standard_or_autoaugment": "Standard or AutoAugment"}

# %% tags=["hide-input"]
p = plan(page.pretraining(LINEAR, profile)["standard_or_autoaugment"], profile).params
page.banner(profile)

# %% [markdown]
# (policies)=
# ## The three policies on one image
#
# One COCO image of this profile. The first column is the anchor, which always gets the standard
# pipeline. The other columns are positive views under each policy, drawn with the training code
# (`Views` with `policy` = `standard`, `autoaugment` or `mixed`).

# %% tags=["hide-input"]
try:
    img = pretrain_images(p)[7]
    policies = {"standard": "standard", "autoaugment": "autoaugment", "standard_or_autoaugment": "mixed"}
    plots.image_rows({LABELS[label]: policy_examples(img, Views(64, p.crop_scale, policy=policy))
                      for label, policy in policies.items()}, columns=6)
except DatasetNotFoundError as err:
    display(Markdown(f"COCO is missing at this profile: {str(err).splitlines()[0]}"))

# %% [markdown]
# (table-7)=
# ## Table 7: augmentation policy of the positives
#
# VOC07 linear SVM mAP of the 200-epoch constrained multi-crop model (with m↓) under each policy.
# The "standard" and "standard or AutoAugment" rows are {ref}`Table 4 <table-4>`'s m↓ and A+ models. Brackets give the
# difference to the standard policy.

# %% tags=["hide-input"]
ours = linear_scores(LINEAR, profile, ("voc_svm",)).rename(columns={"VOC SVM": "VOC_mAP"})
ref = paper.table("table7_augment").reindex(ours.index)
mine = with_deltas(ours, "standard", margins=margins(LINEAR, profile, ("voc_svm",)).set_axis(ours.columns, axis=1),
                   differences=differences(LINEAR, profile, "standard", ("voc_svm",)).set_axis(ours.columns, axis=1))
both = pd.concat({"ours": mine, "paper": with_deltas(ref, "standard")}, axis=1)
both.index = [LABELS[i] for i in both.index]
display(both.style.set_caption(f"Table 7 at profile '{profile.name}' (ours) beside the paper"))
page.missing(ours, profile, "section4_2_augment")
page.provenance(profile, LINEAR)
if not ours.isna().any().any():
    ranges = table_ranges([(BOUNDS, ("voc_svm",))], profile, "rand_init")
    display(Markdown(uncertainty_note("Standard") + " " + blind_note(ranges)))
    checked = verdicts.check([
        Claim("AutoAugment alone lowers VOC SVM mAP", LINEAR["standard"], LINEAR["autoaugment"], "voc_svm"),
        Claim("Standard or AutoAugment raises it", LINEAR["standard_or_autoaugment"], LINEAR["standard"], "voc_svm")],
        profile, blind(ranges))
    display(checked.style.hide(axis="index").set_caption("The paper's claims on Table 7, checked on our runs"))
    display(Markdown(verdicts.summary(checked)))
