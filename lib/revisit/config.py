"""Params files and profiles.

An *experiment* is a YAML file under ``params/`` written at paper scale. A *profile*
(``params/profiles/<name>.yaml``) rescales every experiment of a kind for a machine: ``smoke``
(tests), ``cpu`` (the book's default, synthetic twins) and ``paper`` (GPU hosts, real data,
nothing overridden). Both are validated against the dataclasses below: an unknown key, a wrong
type or an out-of-range value raises ``ParamsError`` naming the file, the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Twin recipes enter the ids of twin runs (a new recipe is new data). Bump when a recipe in data/twins.py or
# data/dense_twins.py changes: cached twins and the runs on them are then made anew. They live here, not beside
# the recipes, so that planning a run imports no torch (each run's batch process starts in about a second).
RECIPE_VERSION = 7
DENSE_RECIPE_VERSION = 2
# The training code's version enters the ids of pretraining runs (and through them of their evaluations). Bump it
# when a change makes a pretraining run compute something else from the same params, so that runs finished before
# are made anew rather than reused. 2: kNN-MoCo's enqueue-first logits before the enqueue (App. B), IN-118K-LT's
# floor of 5 images a class.
TRAINING_VERSION = 2


EXTERNAL = "external:"  # a ``pretrain`` value naming a checkpoint file instead of a pretraining experiment


def external_path(pretrain: str | None) -> Path | None:
    """The checkpoint file of ``pretrain: external:PATH`` (``~`` and ``$VARS`` expanded), else None."""
    if not pretrain or not pretrain.startswith(EXTERNAL):
        return None
    return Path(os.path.expandvars(os.path.expanduser(pretrain[len(EXTERNAL):].strip())))


def params_root() -> Path:
    """Folder of params files and profiles: ``$REVISIT_PARAMS``, else ``params/`` in the project."""
    return Path(os.environ.get("REVISIT_PARAMS", PROJECT_ROOT / "params"))


ARCHS = ("resnet50", "resnet18", "resnet_small")  # revisit.backbones: paper, profile gpu, profiles cpu and smoke
PRETRAIN_SETS = ("in118k", "in118k_lt", "coco", "oi118k", "bdd100k")
TARGETS = ("cifar10", "cars", "food", "pets", "places", "sun", "voc")  # Table 2, logistic regression
# Other evaluation protocols, named target_protocol: the VOC07 SVM of Tables 4 and 7-9 and the SGD
# linear layer of the ImageNet and Places columns of Tables 4 and 9 (App. A.2).
EVALUATIONS = TARGETS + ("voc_svm", "imagenet_sgd", "places_sgd")
TARGET_SETS = TARGETS + ("imagenet",)  # every classification dataset an evaluation reads
POLICIES = ("standard", "autoaugment", "mixed")
# Dense transfer (App. A.3-A.7): finetuned segmentation / depth / detection, frozen-feature DAVIS
# propagation and VOC segment retrieval, and the class activation maps of Figures 6 and S2.
DENSE_TASKS = ("voc_seg", "cityscapes_seg", "nyud_seg", "nyud_depth", "voc_det", "davis", "voc_retrieval", "cams")


class ParamsError(ValueError):
    """A params or profile file that cannot be used; the message says what to change."""


def _choices(*values):
    """Field metadata: the value (or each value of a list) must be one of ``values``."""
    return {"choices": values}


def _range(lo=None, hi=None, *, above=False, increasing=False):
    """Field metadata: allowed values ``lo <= v <= hi`` (``None``: no bound), ``lo < v`` with ``above``.

    ``above`` is for constants where 0 means nothing (a learning rate, a temperature, a factor). For a
    list field the bounds hold for each value, and ``increasing`` asks each value to be at most the next
    (a crop scale's (lo, hi), lr milestones). Numbers are always finite: nan and inf are never allowed.
    """
    return {"min": lo, "max": hi, "above": above, "increasing": increasing}


def _positive(hi=None):
    """Field metadata: ``0 < v <= hi``."""
    return _range(0.0, hi, above=True)


# Upper bounds of sizes, far above the paper's (400 epochs, batch 256, a 65536-key queue, 118K-1.3M
# images, 224-800 px), so that paper-scale runs are never refused but a typo (1e12 epochs) is.
MAX_EPOCHS = 100_000
MAX_BATCH = 2**16
MAX_IMAGES = 10**9
MAX_SIDE = 4096  # pixels: crops, image sides
MAX_SEED = 2**31 - 1  # numpy's and torch's generators all take it


@dataclass(frozen=True)
class PretrainParams:
    """MoCo-v2 pretraining (Sec. 3 and App. A.1); defaults are the paper's."""

    dataset: str = field(default="in118k", metadata=_choices(*PRETRAIN_SETS))
    images: int | None = field(default=None, metadata=_range(1, MAX_IMAGES))  # subset size; None = the full split
    source: str = field(default="real", metadata=_choices("real", "twin"))
    arch: str = field(default="resnet50", metadata=_choices(*ARCHS))
    width: int = field(default=32, metadata=_range(4, 512))  # resnet_small only
    epochs: int = field(default=400, metadata=_range(1, MAX_EPOCHS))
    batch_size: int = field(default=256, metadata=_range(2, MAX_BATCH))
    base_lr: float = field(default=0.3, metadata=_positive())  # at batch 256, scaled linearly
    weight_decay: float = field(default=1e-4, metadata=_range(0.0))
    sgd_momentum: float = field(default=0.9, metadata=_range(0.0, 1.0))
    momentum: float = field(default=0.999, metadata=_range(0.0, 1.0))  # EMA of the key encoder
    temperature: float = field(default=0.2, metadata=_range(1e-4))
    queue_size: int = field(default=65536, metadata=_range(1, 2**24))
    dim: int = field(default=128, metadata=_range(1, 65536))
    head_bn: bool = False  # BN in the head's hidden layer: MoCo-v2 has none (App. A.1); profile cpu needs it to start
    crop_size: int = field(default=224, metadata=_range(8, MAX_SIDE))
    crop_scale: tuple[float, float] = field(default=(0.2, 1.0), metadata=_range(0.0, 1.0, above=True, increasing=True))
    # Shuffle-BN emulated on one device: the batch in bn_groups chunks with their own BN statistics. 2 makes a BN
    # batch of 128 at batch 256, as on the authors' 2 GPUs
    bn_groups: int = field(default=2, metadata=_range(1, 1024))
    # Sec. 4.1 multi-crop: small positives, and their overlap constraint with the anchor (CC)
    small_crops: int = field(default=0, metadata=_range(0, 64))
    small_crop_size: int = field(default=96, metadata=_range(4, MAX_SIDE))
    small_crop_scale: tuple[float, float] = field(default=(0.05, 0.14),
                                                  metadata=_range(0.0, 1.0, above=True, increasing=True))
    min_overlap: float = field(default=0.0, metadata=_range(0.0, 1.0))  # 0.2 = paper's CC, 0.1 = official code's
    # tries at a constrained crop: None = resample until valid (paper); 10 = official
    overlap_tries: int | None = field(default=None, metadata=_range(1, 10**6))
    max_iou: float | None = field(default=None, metadata=_range(1e-3, 1.0))  # Figures 2-3: IoU ceiling between views
    policy: str = field(default="standard", metadata=_choices(*POLICIES))  # Sec. 4.2: "mixed" = A+
    # Sec. 4.3 kNN-MoCo: weight lambda, k neighbours, where they are mined, how the loss starts
    nn_lambda: float = field(default=0.0, metadata=_range(0.0))  # 0 = off
    nn_k: int = field(default=20, metadata=_range(1, 65536))
    nn_features: str = field(default="backbone", metadata=_choices("backbone", "head"))
    # App. B's start-ups: a warm-up of nn_warmup_epochs, or the batch enqueued before mining (moco.MoCo.forward)
    nn_startup: str = field(default="warmup", metadata=_choices("warmup", "enqueue_first"))
    nn_warmup_epochs: float = field(default=5.0, metadata=_range(0.0, MAX_EPOCHS))
    # keep the backbone every n epochs (Figure 5); 0 = never
    snapshot_every: int = field(default=0, metadata=_range(0, MAX_EPOCHS))
    workers: int = field(default=8, metadata=_range(0, 256))
    threads: int = field(default=0, metadata=_range(0, 1024))  # torch intra-op threads; 0 = torch's default
    # autocast of the backbones in the training step (heads, logits and losses stay float32): "fp32" never (the
    # paper's, MoCo's and the authors' code); "amp" float16 on CUDA (with a gradient scaler), float32 elsewhere
    # (profile gpu); "bf16" bfloat16 on any device (profile cpu: 1.6x per step on a CPU with AVX512-BF16)
    precision: str = field(default="fp32", metadata=_choices("amp", "bf16", "fp32"))
    seed: int = field(default=0, metadata=_range(0, MAX_SEED))
    log_every: int = field(default=10, metadata=_range(1, 10**6))


@dataclass(frozen=True)
class LinearParams:
    """Linear evaluation on frozen features (App. A.2, Ericsson et al. protocol)."""

    pretrain: str | None = None  # experiment name under params/, e.g. "pretrain/moco_coco_400ep"; None = random init;
    # "external:PATH" a checkpoint trained elsewhere (MoCo's or the authors' format; revisit.backbones.external_backbone)
    targets: tuple[str, ...] = field(default=TARGETS, metadata=_choices(*EVALUATIONS))
    source: str = field(default="real", metadata=_choices("real", "twin"))
    arch: str = field(default="resnet50", metadata=_choices(*ARCHS))
    width: int = field(default=32, metadata=_range(4, 512))
    image_size: int = field(default=224, metadata=_range(8, MAX_SIDE))
    grid: str = field(default="paper", metadata=_choices("paper", "ericsson"))
    grid_size: int = field(default=45, metadata=_range(1, 1000))
    max_iter: int = field(default=100, metadata=_range(1, 10**6))  # L-BFGS iterations per fit: scikit-learn's
    # default, as Ericsson et al.'s code that produced Table 2 (the paper does not say)
    # the logistic regressions' view of an image: "square", resized to image_size x image_size (App. A.2's text);
    # "short_side_crop", the short side resized to image_size (bicubic), then the centre crop (Ericsson et al.'s code)
    view: str = field(default="square", metadata=_choices("square", "short_side_crop"))
    standardize: bool = False  # logistic regression on standardised features (zero mean, unit variance on the fit's
    # split): L-BFGS converges far faster. The paper is silent and Ericsson et al.'s code fits the raw features
    train_images: int | None = field(default=None, metadata=_range(1, MAX_IMAGES))  # None = the official split
    test_images: int | None = field(default=None, metadata=_range(1, MAX_IMAGES))
    batch_size: int = field(default=256, metadata=_range(1, MAX_BATCH))
    workers: int = field(default=8, metadata=_range(0, 256))
    seed: int = field(default=0, metadata=_range(0, MAX_SEED))
    # VOC07 SVM (Tables 4, 7-9): LinearSVC per class on L2-normalised features
    svm_C: float = field(default=0.5, metadata=_positive())
    # SGD linear layer (ImageNet / Places columns): MoCo's linear-classification recipe
    sgd_epochs: int = field(default=100, metadata=_range(1, MAX_EPOCHS))
    sgd_batch_size: int = field(default=256, metadata=_range(1, MAX_BATCH))
    sgd_lr: float = field(default=30.0, metadata=_positive())
    # lr x0.1 at these epochs
    sgd_milestones: tuple[int, ...] = field(default=(60, 80), metadata=_range(1, MAX_EPOCHS, increasing=True))
    sgd_weight_decay: float = field(default=1e-4, metadata=_range(0.0))
    snapshot_targets: tuple[str, ...] = field(default=(), metadata=_choices(*EVALUATIONS))  # Figure 5: evaluations
    # of the backbones kept along pretraining (its snapshot_every); empty = none
    threads: int = field(default=0, metadata=_range(0, 1024))  # torch intra-op threads; 0 = torch's default


@dataclass(frozen=True)
class TransferParams:
    """Dense transfer of a pretrained backbone (App. A.3-A.7); each task's recipe is the paper's
    (``revisit.dense.finetune.PROTOCOLS``, ``revisit.dense.detection``, ``revisit.dense.propagation``,
    ``revisit.dense.retrieval``), and the fields below only rescale it for a profile."""

    pretrain: str | None = None  # experiment name under params/; None = random init; "external:PATH" as LinearParams
    tasks: tuple[str, ...] = field(default=DENSE_TASKS[:6], metadata=_choices(*DENSE_TASKS))
    source: str = field(default="real", metadata=_choices("real", "twin"))
    arch: str = field(default="resnet50", metadata=_choices(*ARCHS))
    width: int = field(default=32, metadata=_range(4, 512))
    schedule: float = field(default=1.0, metadata=_positive(100.0))  # x every recipe's epochs / iterations
    resolution: float = field(default=1.0, metadata=_positive(8.0))  # x every recipe's input sizes (crops, 512, 800)
    lr_scale: float = field(default=1.0, metadata=_positive())  # x every recipe's learning rate
    head_channels: int = field(default=256, metadata=_range(1, 4096))  # FCN / ASPP width
    # Segmentation and depth: the mean of finetune_runs runs (seeds seed, seed + 1, ...), each keeping its best epoch
    # on the test split (val) or its last. The paper is silent; the authors' code keeps the best, of five runs
    finetune_runs: int = field(default=5, metadata=_range(1, 100))
    finetune_epoch: str = field(default="best", metadata=_choices("best", "last"))
    resize: int | None = field(default=None, metadata=_range(8, MAX_SIDE))  # short side of images; None = native
    max_crop: int | None = field(default=None, metadata=_range(8, MAX_SIDE))  # cap on crops; None = the recipe's
    det_batch_size: int = field(default=16, metadata=_range(1, 1024))
    det_backend: str = field(default="auto", metadata=_choices("auto", "detectron2", "torchvision"))  # auto:
    # detectron2 where it is installed (the paper's), torchvision's Faster R-CNN otherwise
    train_images: int | None = field(default=None, metadata=_range(1, MAX_IMAGES))  # None = the official split
    test_images: int | None = field(default=None, metadata=_range(1, MAX_IMAGES))
    videos: int | None = field(default=None, metadata=_range(1, 10**6))  # DAVIS-2017 val: 30
    video_frames: int = field(default=12, metadata=_range(3, 10**4))  # twins only
    cam_size: int = field(default=224, metadata=_range(8, MAX_SIDE))  # CAMs: the classifier's input (App. A.2 size)
    cam_images: int = field(default=8, metadata=_range(1, 10**6))  # images whose CAMs are kept for the figures
    cam_train_images: int = field(default=20000, metadata=_range(2, MAX_IMAGES))  # the CAM classifier's train set
    workers: int = field(default=8, metadata=_range(0, 256))
    seed: int = field(default=0, metadata=_range(0, MAX_SEED))
    threads: int = field(default=0, metadata=_range(0, 1024))  # torch intra-op threads; 0 = torch's default


@dataclass(frozen=True)
class SupervisedParams(PretrainParams):
    """The ceiling of a table (not in the paper): the backbone trained with the pretraining set's labels
    (cross-entropy, or binary cross-entropy for multi-label sets) on MoCo's anchor view, with the budget of the MoCo
    models it bounds. The same fields as ``PretrainParams``; the contrastive ones (queue, momentum, crops beyond
    the anchor) are unused."""


KINDS = {"pretrain": PretrainParams, "supervised": SupervisedParams, "linear": LinearParams,
         "transfer": TransferParams}
PRETRAINING = ("pretrain", "supervised")  # kinds that train a backbone; a profile's `pretrain` section sets both


def _as_number(value, hint):
    """``value`` as an ``int`` or ``float`` field holds it, however YAML spelled the number; else unchanged.

    YAML 1.1 reads ``1e-4``, ``1e12``, ``inf`` and ``nan`` as strings and ``1.0e+12`` as a float, so a
    number may come as any of them; an int field takes a whole float (``1e3`` is 1000) and leaves a
    fraction for the type check to refuse. Range checks then see the number, whatever its spelling.
    """
    if isinstance(value, bool) or hint not in (int, float):
        return value
    if isinstance(value, str):
        for parse in (int, float):
            try:
                value = parse(value)
                break
            except ValueError:
                pass
        else:
            return value
    if hint is float and isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an integer past 1e308
            return math.copysign(math.inf, value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _allowed(meta) -> str:
    """The range of field metadata as an interval, e.g. ``[1, 100000]`` or ``(0.0, inf)``."""
    lo, hi = meta.get("min"), meta.get("max")
    return (f"{'(' if meta.get('above') or lo is None else '['}{'-inf' if lo is None else lo}, "
            f"{'inf' if hi is None else hi}{')' if hi is None else ']'}")


def _check_value(source, key, value, hint, meta):
    """``value`` of ``key`` checked against its type ``hint`` and field metadata, and converted (a YAML
    string "1e-4" to a float); raises ``ParamsError`` naming ``source``, the key and what is allowed."""
    where = f"{source}: key '{key}'"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{where} must be a list, got {value!r}")
        if args[-1] is not Ellipsis and len(value) != len(args):
            raise ParamsError(f"{where} must have {len(args)} values, got {len(value)}")
        if "choices" in meta:
            bad = [v for v in value if v not in meta["choices"]]
            if bad:
                raise ParamsError(f"{where}: {bad} not allowed; choose from {list(meta['choices'])}")
        value = tuple(_check_value(source, key, v, args[0], meta) for v in value)
        if meta.get("increasing") and any(a > b for a, b in zip(value, value[1:])):
            raise ParamsError(f"{where} is {list(value)}; the values must be increasing, each at most the next")
        return value
    has_range = meta.get("min") is not None or meta.get("max") is not None
    value = _as_number(value, hint)
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsError(f"{where} is {value!r}, not a finite number"
                          + (f"; allowed range {_allowed(meta)}" if has_range else ""))
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        kind = f"{hint.__name__} in {_allowed(meta)}" if has_range else hint.__name__
        raise ParamsError(f"{where} must be {kind}, got {type(value).__name__} {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ParamsError(f"{where} is {value!r}; allowed: {list(meta['choices'])}")
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and (value <= lo if meta.get("above") else value < lo)) or (hi is not None and value > hi):
        raise ParamsError(f"{where} is {value!r}; allowed range {_allowed(meta)}")
    return value


def validate(cls, values: dict, source: str) -> dict:
    """Check ``values`` against the fields of ``cls``; returns the cleaned values."""
    if not isinstance(values, dict):
        raise ParamsError(f"{source}: expected a mapping of keys to values, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"{source}: unknown key(s) {unknown}; allowed keys: {sorted(fields)}")
    return {k: _check_value(source, k, v, hints[k], fields[k].metadata) for k, v in values.items()}


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it: 10x faster


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except (yaml.YAMLError, ValueError) as err:  # ValueError: an integer past 4300 digits, a date 2024-13-01
        raise ParamsError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping")
    return data


@dataclass(frozen=True)
class Profile:
    """How experiments are rescaled for one kind of machine.

    ``scale`` multiplies keys wherever they occur (e.g. ``epochs: 0.02`` keeps the paper's 200 / 400 /
    800-epoch ratios, ``crop_size: 0.143`` its 224 / 160 / 96-pixel ones); ``overrides`` then set
    keys of one kind to fixed values; ``experiments`` last sets keys of the experiments whose name
    matches a shell-style pattern (e.g. ``pretrain/coco200/*``). ``seeds`` is how many training seeds the runs
    listed under ``seeds`` in ``params/book.yaml`` get (``runs.replicas``): the spread the pages show.
    """

    name: str
    description: str
    overrides: dict  # kind -> {key: value}
    scale: dict = field(default_factory=dict)  # key -> factor
    experiments: dict = field(default_factory=dict)  # name pattern -> {key: value}
    path: Path | None = None  # the profile's file, named in errors
    seeds: int = 1  # training seeds of the runs the book replicates (params/book.yaml, key `seeds`)


@functools.cache
def _hints(cls) -> dict:
    """The resolved field types of a params dataclass (``typing.get_type_hints`` evaluates every annotation
    string each call: cached, loading the book's params takes a tenth of the time)."""
    return typing.get_type_hints(cls)


@functools.cache
def _numeric_fields() -> dict:
    return {f.name: _hints(cls)[f.name] for cls in KINDS.values() for f in dataclasses.fields(cls)
            if _hints(cls)[f.name] in (int, float, int | None, float | None)}


def load_profile(name: str, root: Path | None = None) -> Profile:
    root = Path(root or params_root())
    path = root / "profiles" / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (root / "profiles").glob("*.yaml"))
        raise ParamsError(f"unknown profile {name!r} ({path} missing); available: {available}")
    data = _read_yaml(path)
    allowed = {"description", "scale", "experiments", "seeds", *KINDS} - {"supervised"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ParamsError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    overrides = {kind: validate(cls, data.get(kind) or {}, f"{path} [{kind}]") for kind, cls in KINDS.items()
                 if kind != "supervised"}
    overrides["supervised"] = overrides["pretrain"]  # a ceiling trains under the budget of the models it bounds

    scale = data.get("scale") or {}
    if not isinstance(scale, dict):
        raise ParamsError(f"{path}: 'scale' must map parameter names to factors, got {scale!r}")
    numeric = _numeric_fields()
    factors = {}
    for key, factor in scale.items():
        if key not in numeric:
            raise ParamsError(f"{path}: scale key {key!r} is not a numeric parameter; numeric keys: {sorted(numeric)}")
        factors[key] = factor = _check_value(f"{path} [scale]", key, factor, float, _positive())  # a factor: > 0
        if key == "momentum" and factor * (1 - PretrainParams.momentum) >= 1:
            raise ParamsError(f"{path} [scale]: key 'momentum' is {factor!r}; it scales 1 - m, and x{factor} "
                              f"takes the paper's 0.999 to 0 or below")
        both = [kind for kind in KINDS if key in overrides[kind]]
        if both:
            raise ParamsError(f"{path}: {key!r} is both scaled and set in [{both[0]}]; keep one")
    experiments = data.get("experiments") or {}
    known = {f.name for cls in KINDS.values() for f in dataclasses.fields(cls)}
    for pattern, values in experiments.items():
        if not isinstance(values, dict) or set(values) - known:
            raise ParamsError(f"{path}: experiments: {pattern!r} must map known keys to values; "
                              f"unknown: {sorted(set(values) - known) if isinstance(values, dict) else values!r}")
    seeds = _check_value(str(path), "seeds", data.get("seeds", 1), int, _range(1, 100))
    return Profile(name, data.get("description", ""), overrides, factors, dict(experiments), path, seeds)


@dataclass(frozen=True)
class Experiment:
    """One params file: its name (path under params/ without .yaml), kind, title and values."""

    name: str
    kind: str
    title: str
    values: dict
    path: Path


def load_experiment(name: str, root: Path | None = None, *, referrer: str | None = None, _seen=()) -> Experiment:
    """Read ``params/<name>.yaml``; a ``base: <experiment>`` key inherits that experiment's values.

    ``referrer`` says where ``name`` was written (e.g. ``"params/linear/x.yaml: key 'pretrain'"``), so that
    a name that matches no file is reported there, where it can be fixed.
    """
    root = Path(root or params_root())
    path = root / f"{name}.yaml"
    if not path.is_file():
        missing = f"{referrer} names {name!r}, but {path}" if referrer else f"no experiment {name!r}: {path}"
        raise ParamsError(f"{missing} does not exist; `revisit list` shows the experiments")
    data = _read_yaml(path)
    kind = data.pop("kind", None)
    if kind not in KINDS:
        raise ParamsError(f"{path}: key 'kind' must be one of {sorted(KINDS)}, got {kind!r}")
    title = data.pop("title", name)
    values = {}
    base = data.pop("base", None)
    if base is not None:
        if base in _seen or base == name:
            raise ParamsError(f"{path}: 'base' chain loops through {base!r}")
        parent = load_experiment(base, root, referrer=f"{path}: key 'base'", _seen=(*_seen, name))
        if parent.kind != kind:
            raise ParamsError(f"{path}: base {base!r} is a {parent.kind} experiment, not {kind}")
        values = dict(parent.values)
    values.update(validate(KINDS[kind], data, str(path)))
    return Experiment(name, kind, title, values, path)


def list_experiments(root: Path | None = None) -> list[str]:
    """Names of every experiment under ``params/`` (profiles excluded)."""
    root = Path(root or params_root())
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml") if p.parent.name != "profiles" and p.parent != root)


def _scaled(key, value, factor):
    """``value`` x ``factor``; integers round and stay at least 1 (0 and None stay as they are).

    ``momentum`` scales its step size 1 - m instead: x10 turns 0.999 into 0.99 and 0.995 into 0.95,
    keeping the paper's ratio of EMA time constants in a run 50 times shorter.
    """
    if key == "momentum":
        return round(1.0 - (1.0 - value) * factor, 12)
    if not value:
        return value
    product = value * factor
    return max(1, round(product)) if isinstance(value, int) and math.isfinite(product) else round(product, 12)


def resolve(experiment: Experiment, profile: Profile):
    """The experiment's dataclass, rescaled by the profile's ``scale``, then with its fixed overrides.

    Scaled values are checked like the params file's own: a profile cannot make a value that the file
    could not hold (1 epoch x 0.02 stays 1, but 96-px crops x 0.01 would be 1 px, under the minimum of 4).
    """
    cls = KINDS[experiment.kind]
    params = cls(**experiment.values)
    where = profile.path or f"profile {profile.name}"
    scaled = {key: _scaled(key, getattr(params, key), factor) for key, factor in profile.scale.items() if hasattr(params, key)}
    scaled = validate(cls, scaled, f"{where} [scale] on {experiment.name}")
    matched = {}
    for pattern, values in profile.experiments.items():
        if fnmatch.fnmatchcase(experiment.name, pattern):
            matched.update(validate(cls, values, f"{where} [experiments: {pattern}]"))
    return dataclasses.replace(params, **{**scaled, **profile.overrides[experiment.kind], **matched})


def params_hash(params) -> str:
    """A short stable hash of resolved params (dataclass or dict): the run id suffix."""
    values = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params
    blob = json.dumps(values, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]
