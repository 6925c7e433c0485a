"""revisit: executable reproduction of Van Gansbeke et al., "Revisiting Contrastive Methods for
Unsupervised Learning of Visual Representations" (NeurIPS 2021).

Modules, one job each: ``config`` (params and profiles), ``data`` (real loaders, subsets,
synthetic twins and their cache), ``crops`` (crop sampling and IoU, Sec. 3.1 / Fig. 1), ``augment`` (MoCo-v2
views), ``moco`` (model and InfoNCE, Sec. 2 / Eq. 1), ``train`` (pretraining loop),
``linear`` (App. A.2 linear evaluation of frozen features), ``dense`` (App. A.3-A.7 dense transfer),
``metrics`` (VOC AP, mIoU, DAVIS J and F), ``runs`` and ``batch`` (papermill runs),
``results``, ``bootstrap`` (intervals and paired tests over test images), ``verdicts`` (the paper's
claims checked on our runs), ``paper`` (reference numbers), ``plots``, ``cli``.
"""

__version__ = "0.1.0"
