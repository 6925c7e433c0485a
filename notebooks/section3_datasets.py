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
# # 3. Contrastive learning in the wild
#
# Most contrastive methods pretrain on ImageNet: object-centric, uniformly distributed over
# classes, with discriminative images. Section 3 of the paper asks whether MoCo-v2 {cite}`chen2020mocov2` needs those
# properties. It pretrains on five sets (Table 1) and compares frozen features by linear
# classification on seven targets (Table 2). It also measures how often the two default crops fail to overlap (Figure 1).
#
# This page regenerates Table 1, Figure S1, Figures 1-3 and Tables 2-3. Our numbers come from the runs of
# `revisit batch` (see {doc}`../book/intro`). The paper's numbers come from the package's copy of
# the paper's tables.

# %% tags=["remove-cell"]
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from revisit import page, paper, plots, verdicts
from revisit.config import load_profile
from revisit.crops import default_view_ious
from revisit.data import LT_MIN_PER_CLASS, DatasetNotFoundError, long_tailed_class_sizes, pretrain_images
from revisit.data.stats import DISCRIMINATIVE_MIN_DIVERSITY, UNIFORM_MAX_IMBALANCE, class_counts, table1_row
from revisit.results import (CEILING, TABLE2, TASK_COLUMNS, beside, blind, blind_note, constant_floors,
                             differences, floor_summary, linear_scores, margins, measure, pretrain_logs, pretrain_metrics,
                             seed_differences, seed_scores, seed_spread, significant, styled, table_ranges, tally,
                             transfer_results, uncertainty_note)
from revisit.runs import plan
from revisit.verdicts import Claim

PROFILE = os.environ.get("REVISIT_PROFILE", "cpu")
profile = load_profile(PROFILE)
RUNS = page.runs("section3_datasets")  # params/book.yaml: this page's runs by table
PRETRAIN, LINEAR, TRANSFER, IOU_LINEAR = RUNS["table1"], RUNS["table2"], RUNS["table3"], RUNS["figure2"]
IOU = page.pretraining(IOU_LINEAR, profile)  # Figure 3: their pretraining runs
FLOORS = ("Rand. init.", CEILING)  # the rows that bound each column, not models of the paper

# %% tags=["hide-input"]
p = plan(PRETRAIN["IN-118K"], profile).params
page.banner(profile, f"Pretraining at this profile: {p.source} data, `{p.arch}`"
            f"{f' (width {p.width})' if p.arch == 'resnet_small' else ''}, {p.epochs} epochs, batch {p.batch_size}, "
            f"{p.crop_size} px crops, queue {p.queue_size}, momentum {p.momentum}.")

# %% [markdown]
# (table-1)=
# ## Table 1: the pretraining sets
#
# The paper's five pretraining sets differ in three properties: object- versus scene-centric
# (objects per image), uniform versus long-tailed and discriminative versus domain-specific. On the
# left are the paper's values. On the right are the same properties measured on the images this
# profile trains on: the twins at the CPU profiles, the real subsets at the `paper` profile. The
# paper states these properties without measuring them. Our two measures, and their thresholds,
# are printed under the table.

# %% tags=["hide-input"]
reference = paper.table("table1_datasets")
measured = {}
for label, name in PRETRAIN.items():
    try:
        measured[label] = table1_row(pretrain_images(plan(name, profile).params))
    except DatasetNotFoundError as err:
        measured[label] = {}
        print(f"{label}: missing ({str(err).splitlines()[0]})")
measured = pd.DataFrame.from_dict(measured, orient="index").reindex(columns=[
    "images", "objects_per_image", "uniform", "discriminative", "class_imbalance", "diversity"])
table1 = pd.concat({"ours": measured, "paper": reference}).swaplevel()
table1 = table1.reindex(pd.MultiIndex.from_product([list(PRETRAIN), ["ours", "paper"]]))
display(table1.style.format(precision=2, na_rep="-")
        .set_caption(f"Table 1: the paper's values beside ours, measured at profile '{profile.name}'"))
display(Markdown(
    f"*uniform*: the most frequent class is less than {UNIFORM_MAX_IMBALANCE:g} times as frequent as the rarest "
    "(images per class for the ImageNet-like sets; for the scene sets, images holding an object of the class, "
    "from COCO's and OpenImages' box annotations at the paper profile; BDD100K's are not read). "
    f"*discriminative*: random pairs of images differ by at least {DISCRIMINATIVE_MIN_DIVERSITY:g} "
    "(RMS distance of 8x8 colour thumbnails, in [0, 1] units)."))
page.provenance(profile, PRETRAIN)

# %% [markdown]
# (figure-s1)=
# ## Figure S1: the long-tailed subset
#
# IN-118K-LT draws class sizes from a Pareto distribution with $\alpha = 6$ (the sampling of Liu et
# al.). On the left are the class sizes our sampler gives at paper scale: 1000 ImageNet classes,
# 118K images, at most 1300 and, as ImageNet-LT, at least 5 per class. On the right are the class sizes
# measured in the set this profile trains on (the twins keep no floor: scaled to their size it is below one
# image).

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
paper_scale = long_tailed_class_sizes(1000, 118_000, 6.0, max_per_class=1300, min_per_class=LT_MIN_PER_CLASS)
plots.class_sizes(paper_scale, ax=axes[0], label="paper scale: 1000 classes, 118K images")
try:
    lt = pretrain_images(plan(PRETRAIN["IN-118K-LT"], profile).params)
    plots.class_sizes(class_counts(lt), ax=axes[1], label=f"measured: {lt.name}, {len(lt)} images")
except DatasetNotFoundError:
    axes[1].text(0.5, 0.5, "IN-118K-LT missing at this profile", ha="center", transform=axes[1].transAxes)
fig.tight_layout()

# %% [markdown]
# (figure-1)=
# ## Figure 1: default crops seldom fail to overlap
#
# Purushwalkam & Gupta argue that random crops of scene-centric images can show different objects,
# which would make the positive pair misleading. The paper counters that PyTorch's default
# `RandomResizedCrop` (scale (0.2, 1.0), 224 px) hardly ever yields non-overlapping views. We draw
# 100,000 pairs of crops of a 224 x 224 image with the same sampler the training pipeline uses and
# histogram their IoU. No training is involved, so this figure is the same at every profile.

# %% tags=["hide-input"]
ious = default_view_ious(pairs=100_000, height=224, width=224, seed=0)
plots.iou_histogram(ious)
glue("no_overlap", float(100 * np.mean(ious == 0)), display=False)  # the numbers of the next paragraph
glue("below_0.1", float(100 * np.mean(ious < 0.1)), display=False)
glue("median_iou", float(np.median(ious)), display=False)

# %% [markdown]
# Of the 100,000 pairs, {glue:text}`no_overlap:.2f`% do not overlap at all (IoU = 0) and
# {glue:text}`below_0.1:.1f`% overlap by less than 0.1; the median IoU is {glue:text}`median_iou:.2f`.

# %% [markdown]
# (figures-2-3)=
# ## Figures 2-3: forcing the views apart
#
# If overlap between views mattered, forcing less of it should hurt. The paper pretrains on COCO
# while redrawing the two views until their IoU is below a threshold. The training loss rises as the
# threshold falls (Figure 3): the task gets harder. The transfer performance stays about the same
# (Figure 2). We train the same models (`pretrain/coco200/iou_max*`: both views redrawn together until
# their IoU is below the threshold, `revisit.crops.iou_constrained_pair`) and evaluate each with the
# VOC07 SVM. The paper does not say how long these runs were; we use Section 4's 200 epochs, so the
# unconstrained point is Table 4's MoCo model.

# %% tags=["hide-input"]
iou_scores = linear_scores(IOU_LINEAR, profile, ("voc_svm",))["VOC SVM"]
iou_margins = margins(IOU_LINEAR, profile, ("voc_svm",))["VOC SVM"]
iou_signs = significant(differences(IOU_LINEAR, profile, "no constraint", ("voc_svm",)))["VOC SVM"]
iou_logs = pretrain_logs(IOU, profile)
thresholds = [float(k.split("< ")[1]) if "<" in k else 1.0 for k in iou_scores.index]  # "no constraint": 1
plots.iou_sweep(thresholds, iou_scores, iou_margins, iou_logs)
page.missing(iou_scores, profile, "section3_datasets", what="points")
page.provenance(profile, IOU_LINEAR)
if not iou_scores.isna().any():
    final = {label: np.mean([r["loss"] for r in recs if r["epoch"] == recs[-1]["epoch"]]) for label, recs in iou_logs.items()}
    ordered_loss = sorted(final, key=final.get)
    display(Markdown(
        f"VOC SVM mAP spans {iou_scores.min():.1f}-{iou_scores.max():.1f} over the five settings "
        f"(range {iou_scores.max() - iou_scores.min():.1f} points; error bars: 95% bootstrap intervals over test "
        f"images). {int((iou_signs.drop('no constraint') != 0).sum())} of the 4 ceilings differ from the unconstrained "
        "model beyond the noise (paired bootstrap, 95%). Final-epoch loss from lowest to highest: "
        f"{', '.join(ordered_loss)}. The paper's claim is that the loss rises as the ceiling falls while the "
        "transfer stays put."))

# %% [markdown]
# (table-2)=
# ## Table 2: linear classification on frozen features
#
# Each model is frozen and a multinomial logistic regression is fitted on its pooled features for
# every target but Places (App. A.2, Ericsson et al.'s protocol). The L2 constant is chosen on a validation split
# among 45 log-spaced values. Places gets He et al.'s protocol, as in Tables 4 and 9: a linear layer trained with SGD
# on augmented views. VOC reports mAP, Pets mean per-class accuracy and the others top-1 accuracy. As in the
# paper, brackets give the difference to the IN-118K model. The paper has no bounds rows; ours are
# the floor, a random initialisation, and the ceiling, the same backbone trained with IN-118K's labels
# for as many steps as the MoCo models (`revisit.supervised`). A target on which the ceiling does not
# beat the floor beyond the noise cannot tell models apart at this profile: its column is greyed.

# %% tags=["hide-input"]
ours = linear_scores(LINEAR, profile)
ref = paper.table("table2_linear").reindex(ours.index)
ranges2 = table_ranges([(LINEAR, TABLE2)], profile, "Rand. init.")
seeds2 = seed_scores(LINEAR, profile)
both = beside(ours, ref, "IN-118K", margins=margins(LINEAR, profile),
              differences=differences(LINEAR, profile, "IN-118K"), spread=seed_spread(seeds2))
both.loc[[(row, "paper") for row in FLOORS]] = "not in paper"
display(styled(both, blind(ranges2), f"Table 2 at profile '{profile.name}' (ours) beside the paper"))
display(Markdown(uncertainty_note("IN-118K") + " " + blind_note(ranges2)))
page.provenance(profile, LINEAR)

# %% tags=["hide-input"]
page.missing(ours, profile, "section3_datasets")
fig, axes = plt.subplots(1, 2, figsize=(15, 3.2))
rows = ["COCO", "OI-118K", "IN-118K-LT"]
plots.delta_heatmap(ours.loc[rows] - ours.loc["IN-118K"], "ours: difference to IN-118K", ax=axes[0])
plots.delta_heatmap(ref.loc[rows] - ref.loc["IN-118K"], "paper: difference to IN-118K", ax=axes[1])
fig.tight_layout()

# %% tags=["hide-input"]
display(tally(significant(differences(LINEAR, profile, "Rand. init."), seed_differences(LINEAR, profile, "Rand. init.")))
        .drop(index=list(FLOORS)).style
        .set_caption("Each pretrained model against random initialisation: on how many of the 7 targets it is better, "
                     "level or worse beyond the noise (paired bootstrap over test images, 95%, seed 0; where both "
                     "have several seeds, Welch's t-test over the seeds must agree)"))

# %% [markdown]
# ### Across training seeds
#
# The bootstrap intervals above measure one source of noise: which test images were drawn. A second
# source is training itself. Each of the four models is pretrained again at further seeds (the
# replicas `<experiment>@seed1`, `@seed2`, ...; a seed draws the twin's images, the initialisation
# and the order of the batches), the random initialisation is drawn again at each seed, and each
# replica is evaluated on the same test images. The line
# "ours, seeds" of the table gives the mean over the seeds, the lowest and highest score, and the
# number of seeds. Below, every seed is a dot, the red bar is their mean, and the dashed and dotted lines
# are the random initialisation and the ceiling.

# %% tags=["hide-input"]
models = seeds2.drop(index=list(FLOORS), level="model")
if models.groupby(level="model").count().max().max() > 1:
    plots.seed_strips(models, ranges2)
else:
    display(Markdown(f"Profile `{profile.name}` trains each model at one seed (its `seeds` is {profile.seeds}); "
                     "`revisit batch` runs the further seeds at a profile with `seeds: 3`."))

# %% [markdown]
# The paper reads two claims from Table 2 (Sec. 3.1-3.2): a model pretrained on object-centric images
# (IN-118K) is better on the object-centric targets (CIFAR10, Cars, Food, Pets), the scene-centric
# models (COCO, OI-118K) on the scene-centric ones (Places, SUN, VOC); and the long-tailed model is on
# par or better than the uniform one on every target. Here each is checked on our runs.

# %% tags=["hide-input"]
OBJECT_TARGETS, SCENE_TARGETS = ("cifar10", "cars", "food", "pets"), ("places_sgd", "sun", "voc")
claims = ([Claim(f"IN-118K above {scene} (object-centric target)", LINEAR["IN-118K"], LINEAR[scene], t)
           for scene in ("COCO", "OI-118K") for t in OBJECT_TARGETS]
          + [Claim(f"{scene} above IN-118K (scene-centric target)", LINEAR[scene], LINEAR["IN-118K"], t)
             for scene in ("COCO", "OI-118K") for t in SCENE_TARGETS]
          + [Claim("IN-118K-LT on par with or above IN-118K", LINEAR["IN-118K-LT"], LINEAR["IN-118K"], t, ">=")
             for t in OBJECT_TARGETS + SCENE_TARGETS])
checked = verdicts.check(claims, profile, blind(ranges2))
display(checked.style.hide(axis="index").set_caption("The paper's claims on Table 2, checked on our runs"))
display(Markdown(verdicts.summary(checked)))

# %% [markdown]
# (table-3)=
# ## Table 3: dense transfer
#
# The same four models, and a fifth pretrained on BDD100K's street scenes, transferred to dense
# tasks (App. A.3-A.6). Semantic segmentation on VOC, Cityscapes and NYUD and depth on NYUD are
# finetuned end to end with a dilated backbone (output stride 16) and the appendix's heads; VOC
# detection finetunes Faster R-CNN on the dilated C5 map; DAVIS-2017 propagates the first frame's
# masks with frozen features (Jabri et al.'s protocol {cite}`jabri2020space`). The paper finds the models close on every
# task, with COCO and OpenImages slightly ahead on the scene-centric ones, and BDD100K as good as
# the others on Cityscapes only. Depth is an rmse in metres: lower is better.

# %% tags=["hide-input"]
DIGITS = {"NYUD_depth_rmse": 3}
table3 = measure([(TRANSFER, tuple(TASK_COLUMNS))], profile, "IN-118K")
ranges3 = table_ranges([(TRANSFER, tuple(TASK_COLUMNS))], profile, "Rand. init.")
dense = table3.scores
shown = beside(dense, paper.table("table3_transfer"), "IN-118K", DIGITS, table3.margins, table3.differences)
shown.loc[("BDD100K", "ours"), [c for c in dense.columns if c != "Cityscapes_seg"]] = "-"  # as in the paper
shown.loc[[(row, "paper") for row in FLOORS]] = "not in paper"
display(styled(shown, blind(ranges3), f"Table 3 at profile '{profile.name}' (ours) beside the paper"))
page.missing([dense.drop(index="BDD100K"), dense.loc[["BDD100K"], ["Cityscapes_seg"]]], profile, "section3_datasets")
page.provenance(profile, TRANSFER)
display(Markdown(uncertainty_note("IN-118K") + " " + blind_note(ranges3)))
display(Markdown(floor_summary(dense.drop(index=list(FLOORS)), constant_floors(TRANSFER, profile))))
display(tally(significant(measure([(TRANSFER, tuple(TASK_COLUMNS))], profile, "Rand. init.").differences))
        .drop(index=list(FLOORS)).style.set_caption(
            "Each pretrained model against random initialisation: on how many of the 6 tasks it is better, level or "
            "worse beyond the noise (paired bootstrap over test images, 95%)"))


detection = transfer_results(plan(TRANSFER["COCO"], profile)).get("voc_det")
if detection:
    d = detection["details"]
    display(Markdown(f"Detection backend: **{d['backend']}** ({d['iterations']} iterations); AP is the mean over IoU "
                     f"0.50:0.95 with VOC07's 11-point AP, as detectron2 scores VOC. COCO model: AP50 {d['AP50']:.1f}, "
                     f"AP75 {d['AP75']:.1f}."))

# %% [markdown]
# The paper's claims on Table 3 (Sec. 3.1-3.3): pretraining on COCO loses nothing in finetuning, and the
# COCO model "even outperforms its ImageNet counterpart" on the reported tasks; the long-tailed model is
# on par or better than IN-118K on every task; the BDD100K model is on par with IN-118K on Cityscapes.

# %% tags=["hide-input"]
checked = verdicts.check(
    [Claim("COCO better than IN-118K", TRANSFER["COCO"], TRANSFER["IN-118K"], t) for t in TASK_COLUMNS]
    + [Claim("IN-118K-LT on par with or better than IN-118K", TRANSFER["IN-118K-LT"], TRANSFER["IN-118K"], t, ">=")
       for t in TASK_COLUMNS]
    + [Claim("BDD100K on par with or better than IN-118K", TRANSFER["BDD100K"], TRANSFER["IN-118K"], "cityscapes_seg",
             ">=")], profile, blind(ranges3))

display(checked.style.hide(axis="index").set_caption("The paper's claims on Table 3, checked on our runs"))
display(Markdown(verdicts.summary(checked)))

# %% [markdown]
# (section3-curves)=
# ## Pretraining curves

#
# The InfoNCE loss (Eq. 1) and the instance-discrimination accuracy (how often the positive key has
# the highest logit among the queue) of every pretraining run on this page. In runs of a few hundred
# steps the accuracy peaks early, then falls while the loss rises. The first queue holds random
# vectors, then keys of an encoder that is still changing fast, and both are easy negatives. As the
# learning rate decays, the queue's keys come from nearly the current encoder and the task gets
# harder. Read the curves for what they show about the schedule, not as a measure of
# representation quality; {ref}`Table 2 <table-2>` measures that.

# %% tags=["hide-input"]
logs = pretrain_logs(PRETRAIN, profile)
if logs:
    plots.loss_curves(logs)
    display(pretrain_metrics(PRETRAIN, profile)[["epochs", "steps", "final_loss", "final_acc", "images_per_s"]]
            .style.format({"final_loss": "{:.3f}", "final_acc": "{:.3f}", "images_per_s": "{:.0f}"}).set_caption("Pretraining runs: last-epoch loss and accuracy, images/s"))
else:
    display(Markdown(f"No pretraining logs at profile `{profile.name}` yet."))

# %% [markdown]
# ## What the twins can and cannot say
#
# At the CPU profiles every dataset is a synthetic twin (`revisit.data.twins`). The twin keeps the
# property the paper varies: one central object or several small ones, uniform or Pareto class
# sizes, varied scenes or monotonous street views. The twins check that each stage runs end to end:
# cropping, MoCo-v2 with its queue and momentum encoder, the frozen-feature protocol and the
# comparison against a random backbone. They also show that instance discrimination learns
# transferable features on each kind of data. They cannot say whether
# COCO pretraining *helps* scene-centric targets on real images. That depends on real images,
# a ResNet-50 and 400 epochs, while a twin is a few thousand 64 px images and minutes of CPU time.
# Whether the signs of the deltas match the paper's is therefore a property of our generator, not
# evidence for or against the paper's claim. The `paper` profile runs the same code on the real
# datasets at the paper's settings.
