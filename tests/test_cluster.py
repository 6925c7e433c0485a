"""Cluster jobs through submitit's local executor (the code path of Slurm but for the scheduler): one job per run in
the run graph's order, finished runs skipped, the job ids kept and shown."""
import json
import os

from conftest import env_with, revisit

RUNS = ("linear/table2_random_init", "linear/table2_coco")  # the second reads pretrain/moco_coco_400ep's backbone


def test_local_jobs_run_the_graph_in_order_and_a_second_submission_skips_them(tmp_path):
    env = env_with(REVISIT_RUNS=tmp_path)
    first = revisit("batch", "--profile", "smoke", "--executor", "local", *RUNS, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stdout.count("submitted as job") == 3 and "3 of 3 runs done" in first.stdout
    metrics = {path.parent.name.split("--")[0]: json.loads(path.read_text())
               for path in tmp_path.glob("smoke/*/metrics.json")}
    assert set(metrics) == {"linear__table2_random_init", "linear__table2_coco", "pretrain__moco_coco_400ep"}
    pretrained, evaluated = metrics["pretrain__moco_coco_400ep"], metrics["linear__table2_coco"]
    assert pretrained["environment"]["finished"] <= evaluated["environment"]["started"]  # after its pretraining
    jobs = {json.loads(path.read_text())["job_id"] for path in tmp_path.glob("smoke/*/job.json")}
    assert len(jobs) == 3 and (tmp_path / "smoke" / "submitit").is_dir()  # each run's job id, the jobs' logs
    again = revisit("batch", "--profile", "smoke", "--executor", "local", *RUNS, env=env)
    assert again.returncode == 0 and again.stdout.count("done, skipped") == 3 and "submitted" not in again.stdout


def fake_slurm(folder):
    """``srun``, ``sbatch`` (keeps each script, answers job 41, 42, ...) and ``sacct`` (every job RUNNING)."""
    folder.mkdir()
    scripts = {
        "srun": "#!/bin/sh\nexit 0\n",
        "sbatch": f"#!/bin/sh\nn=$(ls {folder}/*.sbatch 2>/dev/null | wc -l)\nid=$((41 + n))\n"
                  f"cp \"$1\" {folder}/$id.sbatch\necho \"Submitted batch job $id\"\n",
        "sacct": "#!/bin/sh\necho 'JobID|State|NodeList'\nwhile [ $# -gt 0 ]; do\n"
                 "  if [ \"$1\" = -j ]; then echo \"$2|RUNNING|node1\"; shift; fi\n  shift\ndone\n",
    }
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)


def test_slurm_jobs_follow_the_run_graph_with_the_options_asked(tmp_path):
    """Through submitit's Slurm executor against a fake Slurm: one sbatch script per run with the partition,
    account, GPUs and time limit; the evaluation waits for its pretraining job (afterok); job ids are shown by
    ``revisit status``, and a second submission skips the runs whose jobs are still running."""
    bin_ = tmp_path / "bin"
    fake_slurm(bin_)
    env = env_with(REVISIT_RUNS=tmp_path / "runs", PATH=f"{bin_}:{os.environ['PATH']}")
    args = ("--profile", "smoke", "linear/table2_coco")
    submitted = revisit("batch", "--executor", "slurm", "--partition", "gpu", "--account", "lab", "--gpus-per-node",
                        "2", "--time", "600", *args, env=env)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert "pretrain/moco_coco_400ep @ smoke: submitted as job 41" in submitted.stdout
    assert "linear/table2_coco @ smoke: submitted as job 42 (after job 41)" in submitted.stdout
    pretraining, evaluation = (bin_ / "41.sbatch").read_text(), (bin_ / "42.sbatch").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --gpus-per-node=2", "#SBATCH --time=600"):
        assert line in pretraining and line in evaluation
    assert "--dependency" not in pretraining
    assert "#SBATCH --dependency=afterok:41" in evaluation and "#SBATCH --kill-on-invalid-dep=yes" in evaluation
    status = revisit("status", *args, env=env)
    assert "[job 41]" in status.stdout and "[job 42]" in status.stdout
    again = revisit("batch", "--executor", "slurm", *args, env=env)
    assert again.stdout.count("still queued or running, skipped") == 2 and "submitted as" not in again.stdout


def test_a_run_stopped_by_the_cluster_says_so(monkeypatch):
    from revisit.batch import describe

    assert describe(SystemExit(-1)) == "SystemExit: -1"
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")  # inside a job, submitit's handler exits on preemption
    assert describe(SystemExit(-1)).startswith("stopped by the cluster (preempted or at its time limit)")


def test_a_run_job_is_checkpointable_and_resubmits_itself():
    import submitit

    from revisit.cluster import RunJob

    job = RunJob("linear/table2_random_init", "smoke", {})
    assert isinstance(job, submitit.helpers.Checkpointable)  # requeued after a preemption or its time limit
    assert job.checkpoint().function is job  # the same run again: it resumes from its last checkpoint


def test_a_run_waits_for_a_pretraining_job_of_an_earlier_submission_and_unknown_jobs_are_not_resubmitted(tmp_path):
    bin_ = tmp_path / "bin"
    fake_slurm(bin_)
    env = env_with(REVISIT_RUNS=tmp_path / "runs", PATH=f"{bin_}:{os.environ['PATH']}")
    first = revisit("batch", "--executor", "slurm", "--profile", "smoke", "pretrain/moco_coco_400ep", env=env)
    assert "submitted as job 41" in first.stdout, first.stdout + first.stderr
    then = revisit("batch", "--executor", "slurm", "--profile", "smoke", "linear/table2_coco", env=env)
    assert "linear/table2_coco @ smoke: submitted as job 42 (after job 41)" in then.stdout  # 41 is still running
    assert "#SBATCH --dependency=afterok:41" in (bin_ / "42.sbatch").read_text()
    (bin_ / "sacct").write_text("#!/bin/sh\nexit 1\n")  # no accounting: the jobs' states are unknown
    again = revisit("batch", "--executor", "slurm", "--profile", "smoke", "linear/table2_coco", env=env)
    assert again.stdout.count("still queued or running, skipped") == 2 and "submitted as" not in again.stdout
    mixed = revisit("batch", "--executor", "slurm", "--jobs", "2", "--profile", "smoke", env=env)
    assert mixed.returncode == 2 and "use --gpus-per-node" in mixed.stderr
