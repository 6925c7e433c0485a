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
# # 4.1 Multi-scale constrained cropping
#
# Section 3 showed that MoCo-v2 works on scene-centric data. Section 4 keeps MoCo and adds
# invariances. Table 4 stacks them one by one on a 200-epoch COCO model: multi-crop
# (MC, {cite}`caron2020swav`), constrained
# multi-crop (CC), a lower key-encoder momentum (m↓), stronger augmentations (A+, {doc}`section4_2_augment`)
# and nearest-neighbour positives (NN, Sec. 4.3). This page covers the cropping steps, the whole of
# Table 4, and what multi-crop does to dense features (Tables 5-6, Figures 6 and S2-S4).
#
# **Multi-crop** adds N = 4 small crops (5-14% of the image, 96 px) to the two default crops, which
# shrink to 160 px. The small crops are positives only: they never reach the momentum encoder or the
# queue, and every one of them is matched with its own image's anchor. **Constrained multi-crop**
# redraws a small crop until at least 20% of its area lies inside the anchor crop, so every positive
# shares content with its anchor. **m↓** lowers the momentum from 0.999 to 0.995, since more views per
# image train the query encoder faster. The code lives in `revisit.crops`
# (`sample_constrained_crop`), `revisit.augment.Views` and `revisit.moco.MoCo`.

# %% tags=["remove-cell"]
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from revisit import page, paper, plots, rundir, verdicts
from revisit.config import load_profile
from revisit.crops import sample_crop, sample_crops
from revisit.data import DatasetNotFoundError, pretrain_images
from revisit.results import (CEILING, beside, blind, blind_note, constant_floors, floor_summary, measure, pretrain_logs,
                             pretrain_metrics, saved_arrays, seed_scores, seed_spread, significant, snapshot_scores,
                             styled, table_ranges, tally, transfer_details, uncertainty_note)
from revisit.runs import plan
from revisit.verdicts import Claim

PROFILE = os.environ.get("REVISIT_PROFILE", "cpu")
profile = load_profile(PROFILE)
RUNS = page.runs("section4_1_multicrop")  # params/book.yaml: this page's runs by table
LINEAR, TRANSFER, FIG5 = RUNS["table4"], RUNS["table4_dense"], RUNS["figure5"]
BOUNDS = ["rand_init", CEILING]  # the floor and ceiling rows: not steps of the ablation
STEP_RUNS = {label: name for label, name in LINEAR.items() if label not in BOUNDS}
STEP_TRANSFER = {label: name for label, name in TRANSFER.items() if label not in BOUNDS}
STEPS = list(STEP_RUNS)
ADDED = {after: "+" + after.removeprefix(before + "+").replace("m_low", "m↓")
         for before, after in zip(STEPS, STEPS[1:])}  # what each row adds to the one before: "+MC", "+m↓", ...
PRETRAIN = page.pretraining(STEP_RUNS, profile)
EVALUATIONS = ("voc_svm", "imagenet_sgd", "places_sgd")
DENSE = ("voc_seg", "cityscapes_seg", "nyud_seg")
PAPER_COLUMNS = {"VOC_cls_mAP": "VOC SVM", "ImageNet_acc": "ImageNet", "Places_acc": "Places"}

# %% tags=["hide-input"]
mc = plan(PRETRAIN["MoCo+MC+CC"], profile).params
two = plan(PRETRAIN["MoCo"], profile).params
page.banner(profile, (
    f"Here: {two.source} COCO, {two.epochs} epochs, batch {two.batch_size}. Two-crop views at {two.crop_size} px; "
    f"multi-crop views at {mc.crop_size} px plus {mc.small_crops} x {mc.small_crop_size} px; momentum "
    f"{two.momentum} (m↓: {plan(PRETRAIN['MoCo+MC+CC+m_low'], profile).params.momentum})."))

# %% [markdown]
# (figure-4)=
# ## Figure 4: the constrained multi-crop
#
# Each panel is a COCO image of this profile with its anchor crop (dashed white) and twelve
# candidate small crops drawn with the multi-crop law. Green candidates keep at least 20% of their
# area inside the anchor and are used; red ones are redrawn. The candidates are drawn with the same
# sampler as training (`revisit.crops.sample_crops`), and the validity rule is the one
# `sample_constrained_crop` enforces.

# %% tags=["hide-input"]
try:
    coco = pretrain_images(two)
    rng = np.random.default_rng(4)
    picks = rng.choice(len(coco), size=4, replace=False)
    imgs = [coco[int(i)].permute(1, 2, 0).numpy() for i in picks]
    anchors = [sample_crop(img.shape[0], img.shape[1], two.crop_scale, rng=rng) for img in imgs]
    candidates = [sample_crops(12, img.shape[0], img.shape[1], mc.small_crop_scale, rng=rng) for img in imgs]
    plots.constrained_crops(imgs, anchors, candidates, mc.min_overlap)
    plt.gcf().suptitle(f"anchor (dashed), valid (green) and rejected (red) small crops, min overlap {mc.min_overlap:.0%}")
except DatasetNotFoundError as err:
    display(Markdown(f"COCO is missing at this profile: {str(err).splitlines()[0]}"))

# %% [markdown]
# (table-4)=
# ## Table 4: ablation of the components
#
# The first three columns finetune the whole network for semantic segmentation (VOC, Cityscapes,
# NYUD; App. A.3-A.5, `revisit.dense.finetune`). The other three use frozen features: *VOC SVM* trains one
# linear SVM per class on L2-normalised features of VOC07 trainval and reports test mAP; *ImageNet* and
# *Places* train a linear layer with SGD on augmented views and report top-1 accuracy (App. A.2).
# Brackets give the difference to MoCo, as the paper prints them. The paper leaves the
# random-initialisation cells of the classification columns empty; ours are the floor. The last row is
# the ceiling (not in the paper): the backbone trained with the COCO twin's object labels for as many
# steps as the MoCo models. A column whose ceiling does not clear the floor beyond the noise is greyed.

# %% tags=["hide-input"]
table4 = measure([(TRANSFER, DENSE), (LINEAR, EVALUATIONS)], profile, "MoCo")
ranges4 = table_ranges([(TRANSFER, DENSE), (LINEAR, EVALUATIONS)], profile, "rand_init")
ours = table4.scores
ref = paper.table("table4_ablation").rename(columns=PAPER_COLUMNS)[list(ours.columns)].reindex(ours.index)
seeds4 = seed_scores(LINEAR, profile, EVALUATIONS)
display(styled(beside(ours, ref, "MoCo", margins=table4.margins, differences=table4.differences,
                      spread=seed_spread(seeds4)), blind(ranges4),
               f"Table 4 at profile '{profile.name}' (ours) beside the paper"))
display(Markdown(uncertainty_note("MoCo") + " " + blind_note(ranges4) + " MoCo and the full model are also trained at "
                 f"further seeds (the profile's `seeds`: {profile.seeds}); their line \"ours, seeds\" gives the mean "
                 "[lowest, highest] (number of seeds) of the linear columns, each seed scored on the same test images."))
display(Markdown(floor_summary(ours[list(ours.columns[:3])], constant_floors(TRANSFER, profile, DENSE))))
page.missing(ours, profile, "section4_1_multicrop")
page.provenance(profile, LINEAR, TRANSFER)
page.released(profile, 200, DENSE + EVALUATIONS)  # the authors' checkpoints, where evaluated (README)

# %% [markdown]
# The same numbers as gains over MoCo after each step. In the paper every step adds a little on
# every column (dashed line). Our solid line shows which steps help on the twins.

# %% tags=["hide-input"]
plots.ablation_steps(ours.drop(index=BOUNDS), ref.drop(index=BOUNDS), "MoCo");

# %% [markdown]
# MoCo and the full model at every training seed (dots; the red bar is their mean), on the linear columns,
# between the random initialisation (dashed) and the ceiling (dotted).

# %% tags=["hide-input"]
ends = seeds4.loc[["MoCo", list(STEPS)[-1]]].rename(index={list(STEPS)[-1]: "full model"})
if ends.groupby(level="model").count().max().max() > 1:
    plots.seed_strips(ends, ranges4, columns=3)
else:
    display(Markdown(f"Profile `{profile.name}` trains each model at one seed (its `seeds` is {profile.seeds})."))

# %% tags=["hide-input"]
compared = {"each step against the row before": (STEP_TRANSFER, STEP_RUNS, None, "MoCo"),
            "each row against MoCo": (STEP_TRANSFER, STEP_RUNS, "MoCo", "MoCo"),
            "each row against random init.": (TRANSFER, LINEAR, "rand_init", "rand_init")}
display(pd.concat({title: tally(significant(measure([(dense, DENSE), (linear, EVALUATIONS)], profile, against)
                                            .differences)).drop(index=first)
                   for title, (dense, linear, against, first) in compared.items()}, axis=1)
        .style.format(precision=0, na_rep="-").set_caption(
            f"On how many of the {ours.shape[1]} columns a row is better, level or worse beyond the noise (paired "
            "bootstrap over test images, 95%)"))

# %% [markdown]
# The paper's claim for Table 4 is that every step improves the transfer (Sec. 4.1-4.3: "both the
# multi-crop and constrained multi-crop significantly improve", "reducing the momentum yields further
# gains", A+ gives "considerable improvements on all tasks", and so does the neighbour loss). Each step on
# each column is checked on our runs, and last the whole recipe against MoCo on the linear columns: the two
# rows trained at several seeds, so their verdicts weigh the noise of training too.

# %% tags=["hide-input"]
rows = list(STEP_RUNS)
claims = ([Claim(f"{ADDED[after]} raises {before}", STEP_TRANSFER[after], STEP_TRANSFER[before], task)
           for before, after in zip(rows, rows[1:]) for task in DENSE]
          + [Claim(f"{ADDED[after]} raises {before}", STEP_RUNS[after], STEP_RUNS[before], evaluation)
             for before, after in zip(rows, rows[1:]) for evaluation in EVALUATIONS])
full = rows[-1]  # the whole recipe against MoCo: the rows trained at several seeds
claims += [Claim("all five steps raise MoCo", STEP_RUNS[full], STEP_RUNS["MoCo"], evaluation) for evaluation in EVALUATIONS]
checked = verdicts.check(claims, profile, blind(ranges4))
display(checked.style.hide(axis="index").set_caption("The paper's claims on Table 4"))

display(Markdown(verdicts.summary(checked)))

# %% [markdown]
# (tables-5-6)=
# ## Dense features without finetuning: Tables 5 and 6
#
# The paper argues that multi-crop makes the representation describe every region of the scene, not
# only its most discriminative part. Two frozen-feature tasks test this on MoCo and MoCo + MC (the
# 200-epoch models above). **DAVIS-2017 video instance segmentation** (Table 5) propagates the first
# frame's object masks through the video by nearest neighbours between frames (Jabri et al.'s protocol
# {cite}`jabri2020space`,
# `revisit.dense.propagation`) and scores region similarity J and boundary accuracy F as the official
# DAVIS evaluation does (`revisit.metrics.davis_j`, `davis_f`). **Semantic segment retrieval** on VOC
# (Table 6) cuts each image into 15 K-means regions of its dilated-ResNet features and labels every
# val region with its nearest train region (`revisit.dense.retrieval`); mIoU over all 21 classes and over 7.
# DenseCL, MAST, STC, SegSort and the hypercolumn method are other methods: the paper's numbers only.

# %% tags=["hide-input"]
PAIR = {"MoCo": TRANSFER["MoCo"], "MoCo+MC": TRANSFER["MoCo+MC"]}
frozen = measure([(PAIR, ["davis", "voc_retrieval"])], profile, "MoCo")  # J&F and the 7-class mIoU, with intervals
davis = pd.concat([transfer_details(PAIR, profile, "davis", {"J_mean": "J_mean", "F_mean": "F_mean"}),
                   frozen.scores[["DAVIS_JF"]]], axis=1)
retrieval = pd.concat([frozen.scores[["classes_7"]],
                       transfer_details(PAIR, profile, "voc_retrieval", {"mIoU_21": "classes_21"})], axis=1)
ref5, ref6 = paper.table("table5_davis"), paper.table("table6_retrieval")
display(beside(davis, ref5[["J_mean", "F_mean"]], "MoCo", margins=frozen.margins, differences=frozen.differences)
        .style.set_caption(f"Table 5: DAVIS-2017 label propagation, profile '{profile.name}' (ours) beside the paper; "
                           "J&F (not in the paper) with its interval over videos"))
display(beside(retrieval, ref6, "MoCo", margins=frozen.margins, differences=frozen.differences).style.set_caption(
    f"Table 6: VOC segment retrieval (mIoU), profile '{profile.name}' (ours) beside the paper; the 7-class mIoU with "
    "its interval over val images"))
display(Markdown(uncertainty_note("MoCo")))
display(pd.concat([ref5.drop(index=list(PAIR)), ref6.drop(index=list(PAIR))], axis=1).style.format(
    precision=1, na_rep="-").set_caption("Other methods in Tables 5-6 (paper only; not trained here)"))
page.missing([davis, retrieval], profile, "section4_1_multicrop")
page.provenance(profile, PAIR)

# %% [markdown]
# (figures-6-s2)=
# ## Figures 6 and S2: class activation maps
#
# A linear classifier on the frozen, pooled features of each model (ImageNet, or its object-centric
# twin), then CAM_c = sum_k w_ck f_k over the last block's feature maps for the image's true class,
# min-max normalised (`revisit.dense.cams`). The paper's multi-crop CAMs cover the whole object, the
# two-crop ones a few discriminative parts.

# %% tags=["hide-input"]
cams = {"MoCo (two-crop)": saved_arrays(PAIR["MoCo"], profile, rundir.CAMS),
        "MoCo + MC (multi-crop)": saved_arrays(PAIR["MoCo+MC"], profile, rundir.CAMS)}
if all(v is not None for v in cams.values()):
    plots.class_activation_maps(cams)
    accuracy = transfer_details(PAIR, profile, "cams", {"value": "top-1"})
    display(Markdown("Top-1 of the linear classifiers behind the maps: " +
                     ", ".join(f"{k} {v:.1f}%" for k, v in accuracy["top-1"].items()) + "."))
else:
    display(Markdown(f"No CAMs at profile `{profile.name}` yet."))

# %% [markdown]
# (figure-s3)=
# ## Figure S3: propagated masks
#
# One video of the DAVIS run of MoCo + MC: the annotated first frame, then the masks carried forward
# by label propagation (bottom) against the ground truth (top).

# %% tags=["hide-input"]
example = saved_arrays(PAIR["MoCo+MC"], profile, rundir.DAVIS_EXAMPLE)
if example is not None:
    plots.propagated_masks(example)
else:
    display(Markdown(f"No propagated video at profile `{profile.name}` yet."))

# %% [markdown]
# (figure-s4)=
# ## Figure S4: retrieved segments
#
# Query regions of val images (left, outlined) and the train regions nearest to them, with their
# classes, for MoCo + MC.

# %% tags=["hide-input"]
found = saved_arrays(PAIR["MoCo+MC"], profile, rundir.RETRIEVAL_EXAMPLES)
if found is not None:
    plots.retrieved_segments(found)
else:
    display(Markdown(f"No retrievals at profile `{profile.name}` yet."))

# %% [markdown]
# (table-4-training)=
# ## Training: loss, throughput and the constraint's cost
#
# Loss curves of the six Table 4 models. The multi-crop models average the InfoNCE loss over five
# positives, four of them small crops, so their loss is not on the two-crop model's scale. The
# table lists the measured throughput (images per second, each image with all its views), the
# training time, and how many small-crop candidates the 20% constraint rejected.

# %% tags=["hide-input"]
logs = pretrain_logs(PRETRAIN, profile)
if logs:
    plots.loss_curves(logs)
    metrics = pretrain_metrics(PRETRAIN, profile)
    display(metrics[["epochs", "steps", "final_loss", "final_acc", "images_per_s", "train_seconds", "rejected_crops",
                     "fallback_crops"]].style.format({"final_loss": "{:.3f}", "final_acc": "{:.3f}",
                                                      "images_per_s": "{:.0f}", "train_seconds": "{:.0f}"})
            .set_caption("Pretraining runs of Table 4"))
else:
    display(Markdown(f"No pretraining logs at profile `{profile.name}` yet."))
page.provenance(profile, PRETRAIN)

# %% [markdown]
# (figure-5)=
# ## Figure 5: transfer versus training time
#
# Does multi-crop pay for its extra views? The paper plots transfer against training time and finds
# the multi-crop model ahead at equal time. We keep the backbone every 100 (paper) epochs of the two
# 800-epoch models of Table 9, MoCo (two-crop) and MoCo + CC (constrained multi-crop, m↓), and evaluate
# each with the VOC07 SVM. The x axis is the measured training time of each run on this machine.

# %% tags=["hide-input"]
along = snapshot_scores(FIG5, profile)
if along.empty:
    display(Markdown(f"No snapshots evaluated at profile `{profile.name}` yet: run "
                     f"`revisit batch --profile {profile.name} --section section4_1_multicrop`."))
else:
    plots.snapshot_curves(along)
    speed = pretrain_metrics(page.pretraining(FIG5, profile), profile)
    if not speed.empty:
        display(speed[["images_per_s", "train_seconds"]].style.format("{:.0f}").set_caption(
            "Measured throughput: images per second (each with all its views) and total training seconds"))
page.provenance(profile, FIG5)

# %% [markdown]
# ## What the twins reproduce
#
# The twins run every mechanism of Table 4 at a scale a laptop trains in minutes (the numbers are
# printed below). A step that moves a column by one or two points here is within the noise of a
# single 600-image test set, so read the table for large effects, not for the paper's ordering. At
# this profile the anchors are 23 px and the small crops 14 px wide: a small crop of a 64 px twin holds
# a few objects' worth of pixels, far less than a 96 px crop of a COCO photograph, which is one reason
# the twins need not reward multi-crop. What the tests check regardless of scale: the constraint's rule
# (`tests/test_crops.py`), the batch layout, each small crop matched with its own anchor and never
# enqueued (`tests/test_moco.py`), and A+ touching positives only (`tests/test_augment.py`).

# %% tags=["hide-input"]
if not ours.drop(index=BOUNDS).isna().any().any():
    last = list(STEPS)[-1]
    display(Markdown(
        f"At profile `{profile.name}` each model saw {two.epochs} epochs of {two.images} images "
        f"({plan(PRETRAIN['MoCo'], profile).metrics()['steps']} steps of {two.batch_size}). "
        f"The full model ({last}) is {'above' if (ours.loc[last] > ours.loc['MoCo']).all() else 'not above'} "
        f"MoCo on every column; the paper's is, by {', '.join(f'{v:+.1f}' for v in (ref.loc[last] - ref.loc['MoCo']))} "
        f"points. Ours differ by {', '.join(f'{v:+.1f}' for v in (ours.loc[last] - ours.loc['MoCo']))}."))
