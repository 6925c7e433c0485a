# The CUDA check for a GPU host: paper-size throughput of every training path, every dense task
# through revisit.dense on cuda (smoke sizes, small and ResNet-50 backbones), the data path against the authors' PIL
# pipeline, the dry run of profile gpu, and a smoke pretraining run through the batch runner with DDP over every
# GPU. Run from the repo root.
set -o pipefail; export PYTHONPATH=lib PYTHONUNBUFFERED=1 REVISIT_CACHE=/tmp/cache; nvidia-smi -L; python3 benchmarks/throughput.py --paper --steps 10 --workers 12 2>&1 | grep -v Warning | tee ${OUT:-.}/bench.log; python3 - <<'PY' 2>&1 | grep -v Warning | tee ${OUT:-.}/transfer.log
import dataclasses, torch, tempfile, time
from revisit.config import load_profile
from revisit.runs import plan
from revisit.backbones import build_backbone
from revisit.dense import evaluate_tasks
from revisit.config import DENSE_TASKS
p = dataclasses.replace(plan("transfer/table3/coco", load_profile("smoke")).params, tasks=DENSE_TASKS)
for arch, width in [("resnet_small", 8), ("resnet50", 32)]:
    q = dataclasses.replace(p, arch=arch, width=width)
    with tempfile.TemporaryDirectory() as d:
        t = time.time()
        r = evaluate_tasks(DENSE_TASKS, build_backbone(arch, width), q, d, "cuda", progress=False)
        print(arch, "all dense tasks on cuda in", round(time.time() - t, 1), "s:", {k: round(v.value, 2) for k, v in r.items()}, r["voc_det"].details["backend"])
PY
python3 benchmarks/data_path.py --workers 12 2>&1 | grep -v Warning | tee ${OUT:-.}/data_path.log
python3 -m revisit.cli check --profile gpu --steps 5 2>&1 | grep -v Warning | tee ${OUT:-.}/check_gpu.log
REVISIT_RUNS=/tmp/ddp-runs REVISIT_PROCESSES=$(nvidia-smi -L | wc -l) python3 -m revisit.cli batch --profile smoke pretrain/moco_in118k_400ep 2>&1 | tail -5 | tee ${OUT:-.}/ddp.log; python3 -c "import json,glob; print(json.load(open(glob.glob('/tmp/ddp-runs/smoke/pretrain__moco_in118k_400ep--*/metrics.json')[0])).get('processes'))" | tee -a ${OUT:-.}/ddp.log
