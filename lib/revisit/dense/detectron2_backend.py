"""The detectron2 backend of VOC detection (App. A.4; Table 3, "Detection (AP)"): the paper's own tool.

detectron2 (not on PyPI) trains its ``faster_rcnn_R_50_DC5`` config with MoCo's VOC solver on our ResNet-50
weights, converted with MoCo's ``convert-pretrain-to-detectron2.py`` key mapping (``save_detectron2_checkpoint``);
its test predictions are scored by ``detection.voc_ap``, as the torchvision backend's are. ``detection.detect``
chooses the backend.
"""
from __future__ import annotations

import pickle
import re
import tempfile
import uuid
from pathlib import Path

import numpy as np

from ..augment import IMAGENET_MEAN, IMAGENET_STD
from ..backbones import TorchvisionResNet50
from ..data.dense import DenseSet
from .detection import DetectionParams, DetectionResult, Detections, detection_result, valid_boxes, voc_ap

DETECTRON2_MISSING = (
    "backend='detectron2' needs detectron2, which is not on PyPI. Install it with\n"
    "  pip install 'git+https://github.com/facebookresearch/detectron2.git'\n"
    "(a torch/CUDA build toolchain is needed) or from conda-forge: conda install -c conda-forge detectron2.\n"
    "backend='torchvision' runs the same protocol without it."
)


# ---------------------------------------------------------------- weights (MoCo's converter)

def _detectron2_name(name: str) -> str:
    """torchvision ResNet key (without ``net.``) -> detectron2 ResNet key."""
    if not name.startswith("layer"):
        name = "stem." + name  # conv1 / bn1 of the stem
    name = re.sub(r"^layer(\d)", lambda m: f"res{int(m[1]) + 1}", name)
    name = re.sub(r"\bbn(\d)\b", r"conv\1.norm", name)
    return name.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


def to_detectron2(state_dict: dict) -> dict[str, np.ndarray]:
    """Our ResNet-50 weights (``TorchvisionResNet50.state_dict()``) under detectron2's ResNet names, as numpy
    arrays: layerN -> res{N+1}, bnK -> convK.norm, downsample.0/1 -> shortcut(.norm), stem conv1/bn1 ->
    stem.conv1(.norm); the classifier is dropped. Only the ResNet-50 has a detectron2 counterpart."""
    if "net.layer1.0.conv3.weight" not in state_dict or not all(k.startswith("net.") for k in state_dict):
        raise ValueError("only the resnet50 backbone (revisit.backbones.TorchvisionResNet50, keys 'net.*') can be "
                         "converted to detectron2; resnet18 and resnet_small have no detectron2 counterpart: "
                         "use backend='torchvision'")
    return {_detectron2_name(k[len("net."):]): v.detach().cpu().numpy()
            for k, v in state_dict.items() if not k.startswith("net.fc.")}


def save_detectron2_checkpoint(state_dict: dict, path) -> Path:
    """Write ``to_detectron2(state_dict)`` as the ``.pkl`` detectron2 loads for MODEL.WEIGHTS (matched by
    its name heuristics, like MoCo's converted checkpoints)."""
    path = Path(path)
    if path.suffix != ".pkl":
        raise ValueError(f"{path}: detectron2 reads converted weights only from a '.pkl' file")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"model": to_detectron2(state_dict), "__author__": "revisit", "matching_heuristics": True}, f)
    return path


# ---------------------------------------------------------------- training and test

def _image_files(data: DenseSet, folder: Path) -> list[tuple[str, int, int]]:
    """``(file, height, width)`` per image: the paths themselves, or PNGs written for in-memory twins
    (detectron2's DatasetMapper reads files)."""
    from PIL import Image

    if not isinstance(data.images, np.ndarray):
        out = []
        for path in data.images:
            with Image.open(path) as img:
                out.append((str(path), img.height, img.width))
        return out
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, array in enumerate(data.images):
        Image.fromarray(array).save(folder / f"{i:06d}.png")
        files.append((str(folder / f"{i:06d}.png"), array.shape[0], array.shape[1]))
    return files


def _detectron2_dicts(data: DenseSet, folder: Path) -> list[dict]:
    """detectron2's dataset dicts (XYXY_ABS boxes, 0-based category ids; difficult boxes kept for training)."""
    from detectron2.structures import BoxMode

    dicts = []
    for i, (file, height, width) in enumerate(_image_files(data, folder)):
        target = data.target(i)
        keep = valid_boxes(target)
        annotations = [{"bbox": [float(v) for v in box], "bbox_mode": BoxMode.XYXY_ABS, "category_id": int(label)}
                       for box, label in zip(np.asarray(target.boxes)[keep], np.asarray(target.labels)[keep])]
        dicts.append({"file_name": file, "image_id": i, "height": height, "width": width, "annotations": annotations})
    return dicts


def _detectron2_config(params: DetectionParams, weights: Path, train_name, test_name, num_classes, device, output):
    """detectron2's ``faster_rcnn_R_50_DC5`` config (RES5_DILATION 2) with MoCo's VOC solver and input values,
    torchvision-style weights (RGB, ImageNet mean/std, stride in the 3x3 conv), all stages trained (FREEZE_AT 0)
    and MoCo's naiveSyncBN with precise BN (plain BN in a single process)."""
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    p = params
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_DC5_1x.yaml"))
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = str(weights), str(device)
    cfg.MODEL.PIXEL_MEAN = [255 * m for m in IMAGENET_MEAN]
    cfg.MODEL.PIXEL_STD = [255 * s for s in IMAGENET_STD]
    cfg.INPUT.FORMAT = "RGB"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.NORM = "naiveSyncBN"
    cfg.MODEL.RESNETS.RES5_DILATION = 2
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.TEST.PRECISE_BN.ENABLED = True
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [list(s) for s in p.anchor_sizes]
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [list(r) for r in p.aspect_ratios]
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION, cfg.MODEL.ROI_BOX_HEAD.FC_DIM = p.roi_resolution, p.fc_dim
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN, cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = p.rpn_pre_nms_topk
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN, cfg.MODEL.RPN.POST_NMS_TOPK_TEST = p.rpn_post_nms_topk
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TEST = tuple(p.min_sizes), p.test_size
    cfg.INPUT.MAX_SIZE_TRAIN = cfg.INPUT.MAX_SIZE_TEST = p.max_size
    cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MOMENTUM = p.batch_size, p.lr, p.momentum
    cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.STEPS, cfg.SOLVER.GAMMA = p.weight_decay, tuple(p.steps), p.gamma
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.CHECKPOINT_PERIOD = p.iterations, p.iterations
    cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR = p.warmup_iters, p.warmup_factor
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (train_name,), (test_name,)
    cfg.DATALOADER.NUM_WORKERS, cfg.SEED, cfg.OUTPUT_DIR = p.workers, p.seed, str(output)
    cfg.freeze()
    return cfg


def detect_with_detectron2(backbone, train, test, params, device, progress) -> DetectionResult:
    """Train and test with detectron2's DefaultTrainer (one process; detectron2 logs its own progress),
    scored by ``voc_ap`` on the test predictions."""
    try:
        import detectron2  # noqa: F401
    except ImportError as err:
        raise ImportError(DETECTRON2_MISSING) from err
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.engine import DefaultTrainer
    from detectron2.evaluation import DatasetEvaluator

    if not isinstance(backbone, TorchvisionResNet50):
        raise ValueError("backend='detectron2' builds detectron2's ResNet-50; pass the resnet50 backbone "
                         "(use backend='torchvision' for resnet18 and resnet_small)")
    output = Path(tempfile.mkdtemp(prefix="revisit-detectron2-"))
    weights = save_detectron2_checkpoint(backbone.state_dict(), output / "backbone.pkl")
    tag = uuid.uuid4().hex[:8]
    names = {"train": f"revisit_train_{tag}", "test": f"revisit_test_{tag}"}
    dicts = {"train": _detectron2_dicts(train, output / "train"), "test": _detectron2_dicts(test, output / "test")}
    for split, name in names.items():
        DatasetCatalog.register(name, lambda d=dicts[split]: d)
        MetadataCatalog.get(name).set(thing_classes=list(train.classes))
    scores = []

    class VOCEvaluator(DatasetEvaluator):
        """Collects predictions per image id and scores them with ``voc_ap``."""

        def reset(self):
            self.predictions = {}

        def process(self, inputs, outputs):
            for inp, out in zip(inputs, outputs):
                inst = out["instances"].to("cpu")
                self.predictions[inp["image_id"]] = Detections(inst.pred_boxes.tensor.numpy(), inst.scores.numpy(),
                                                               inst.pred_classes.numpy())

        def evaluate(self):
            detections = [self.predictions.get(i, Detections.empty()) for i in range(len(test))]
            scores.append(voc_ap(detections, [test.target(i) for i in range(len(test))], test.classes))
            return {"bbox": {k: scores[-1][k] for k in ("AP", "AP50", "AP75")}}

    class Trainer(DefaultTrainer):
        @classmethod
        def build_evaluator(cls, cfg, dataset_name, output_folder=None):
            return VOCEvaluator()

    try:
        cfg = _detectron2_config(params, weights, names["train"], names["test"], len(train.classes), device, output)
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()  # DefaultTrainer's EvalHook runs the test set once training ends
        if not scores:  # e.g. an older detectron2 without the final evaluation
            Trainer.test(cfg, trainer.model, evaluators=[VOCEvaluator()])
        curve = [float(v) for v, _ in trainer.storage.history("total_loss").values()]
    finally:
        for name in names.values():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    n_train = sum(1 for d in dicts["train"] if d["annotations"])
    return detection_result("detectron2", scores[-1], n_train, len(test), curve)
