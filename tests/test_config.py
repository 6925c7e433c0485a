"""Params files and profiles: validation errors name the file, the key and what is allowed."""
import dataclasses

import pytest

from revisit.config import MAX_SEED, ParamsError, load_experiment, load_profile, params_hash, resolve


def write(root, name, text):
    path = root / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, message", [
    ("kind: pretrain\ndataset: coco\nbatchsize: 256\n", "unknown key(s) ['batchsize']"),
    ("kind: pretrain\nepochs: many\n", "key 'epochs' must be int"),
    ("kind: pretrain\nepochs: 0\n", "key 'epochs' is 0; allowed range [1"),
    ("kind: pretrain\ndataset: imagenet21k\n", "key 'dataset' is 'imagenet21k'; allowed: ['in118k'"),
    ("kind: pretrain\ncrop_scale: [0.2]\n", "key 'crop_scale' must have 2 values"),
    ("kind: linear\ntargets: [cifar10, mnist]\n", "['mnist'] not allowed"),
    ("kind: finetune\n", "key 'kind' must be one of"),
    ("kind: pretrain\nepochs: [1\n", "not valid YAML"),
    ("- a list\n", "top level must be a mapping"),
    ("kind: pretrain\nepochs: " + "9" * 5000 + "\n", "not valid YAML"),  # past Python's 4300-digit int limit
    # non-finite numbers, wherever a float is taken
    ("kind: pretrain\nbase_lr: .nan\n", "key 'base_lr' is nan, not a finite number; allowed range (0.0, inf)"),
    ("kind: pretrain\ntemperature: .inf\n", "key 'temperature' is inf, not a finite number; allowed range [0.0001"),
    ("kind: pretrain\ntemperature: inf\n", "key 'temperature' is inf, not a finite number"),
    ("kind: pretrain\nweight_decay: .inf\n", "key 'weight_decay' is inf, not a finite number; allowed range [0.0,"),
    ("kind: pretrain\nnn_lambda: -.inf\n", "key 'nn_lambda' is -inf, not a finite number"),
    ("kind: pretrain\nmax_iou: .nan\n", "key 'max_iou' is nan, not a finite number; allowed range [0.001, 1.0]"),
    ("kind: pretrain\ncrop_scale: [0.2, .nan]\n", "key 'crop_scale' is nan, not a finite number"),
    ("kind: linear\nsvm_C: infinity\n", "key 'svm_C' is inf, not a finite number"),
    ("kind: transfer\nschedule: 1e400\n", "key 'schedule' is inf, not a finite number; allowed range (0.0, 100.0]"),
    ("kind: pretrain\nepochs: .inf\n", "key 'epochs' is inf, not a finite number; allowed range [1, 100000]"),
    # sizes no machine can hold, however YAML spells them (1e12 is a string to it, 1.0e+12 a float)
    ("kind: pretrain\nepochs: 1e12\n", "key 'epochs' is 1000000000000; allowed range [1, 100000]"),
    ("kind: pretrain\nepochs: 1.0e+12\n", "key 'epochs' is 1000000000000; allowed range [1, 100000]"),
    ("kind: pretrain\nepochs: 1000000000000\n", "key 'epochs' is 1000000000000; allowed range [1, 100000]"),
    ("kind: pretrain\nepochs: 2.5\n", "key 'epochs' must be int in [1, 100000], got float 2.5"),
    ("kind: pretrain\nqueue_size: 1e20\n", "key 'queue_size' is 100000000000000000000; allowed range [1, 16777216]"),
    ("kind: pretrain\nbatch_size: 1000000\n", "key 'batch_size' is 1000000; allowed range [2, 65536]"),
    ("kind: pretrain\nimages: 1e10\n", "key 'images' is 10000000000; allowed range [1, 1000000000]"),
    ("kind: pretrain\ncrop_size: 100000\n", "key 'crop_size' is 100000; allowed range [8, 4096]"),
    ("kind: pretrain\ndim: 1e9\n", "key 'dim' is 1000000000; allowed range [1, 65536]"),
    ("kind: pretrain\nseed: -1\n", "key 'seed' is -1; allowed range [0, 2147483647]"),
    ("kind: linear\nsgd_epochs: 1e6\n", "key 'sgd_epochs' is 1000000; allowed range [1, 100000]"),
    ("kind: transfer\nresolution: 100\n", "key 'resolution' is 100.0; allowed range (0.0, 8.0]"),
    ("kind: transfer\nhead_channels: 1e6\n", "key 'head_channels' is 1000000; allowed range [1, 4096]"),
    # impossible orders: a crop scale is (lo, hi) within (0, 1], milestones increase
    ("kind: pretrain\ncrop_scale: [1.0, 0.2]\n", "key 'crop_scale' is [1.0, 0.2]; the values must be increasing"),
    ("kind: pretrain\nsmall_crop_scale: [0.14, 0.05]\n", "key 'small_crop_scale' is [0.14, 0.05]; the values must be"),
    ("kind: pretrain\ncrop_scale: [0, 1]\n", "key 'crop_scale' is 0.0; allowed range (0.0, 1.0]"),
    ("kind: pretrain\ncrop_scale: [0.2, 1.5]\n", "key 'crop_scale' is 1.5; allowed range (0.0, 1.0]"),
    ("kind: linear\nsgd_milestones: [80, 60]\n", "key 'sgd_milestones' is [80, 60]; the values must be increasing"),
    ("kind: linear\nsgd_milestones: [0, 60]\n", "key 'sgd_milestones' is 0; allowed range [1, 100000]"),
    # constants where 0 or less means nothing
    ("kind: linear\nsvm_C: 0\n", "key 'svm_C' is 0.0; allowed range (0.0, inf)"),
    ("kind: linear\nsgd_lr: 0\n", "key 'sgd_lr' is 0.0; allowed range (0.0, inf)"),
    ("kind: pretrain\nbase_lr: -0.1\n", "key 'base_lr' is -0.1; allowed range (0.0, inf)"),
    ("kind: pretrain\ntemperature: 0\n", "key 'temperature' is 0.0; allowed range [0.0001, inf)"),
    ("kind: transfer\nschedule: 0\n", "key 'schedule' is 0.0; allowed range (0.0, 100.0]"),
    ("kind: transfer\nresolution: 0.0\n", "key 'resolution' is 0.0; allowed range (0.0, 8.0]"),
    ("kind: transfer\nlr_scale: 0\n", "key 'lr_scale' is 0.0; allowed range (0.0, inf)"),
])
def test_bad_params_file(tmp_path, body, message):
    path = write(tmp_path, "pretrain/bad", body)
    with pytest.raises(ParamsError) as err:
        load_experiment("pretrain/bad", root=tmp_path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_and_profile(tmp_path):
    with pytest.raises(ParamsError, match="no experiment 'pretrain/nothing': .* does not exist; `revisit list`"):
        load_experiment("pretrain/nothing", root=tmp_path)
    write(tmp_path, "profiles/cpu", "pretrain: {epochs: 2}\n")
    with pytest.raises(ParamsError, match=r"unknown profile 'gpu'.*available: \['cpu'\]"):
        load_profile("gpu", root=tmp_path)


def test_profile_keys_are_validated(tmp_path):
    path = write(tmp_path, "profiles/odd", "pretrain: {epoch: 2}\n")
    with pytest.raises(ParamsError, match=r"profiles/odd.yaml \[pretrain\]: unknown key"):
        load_profile("odd", root=tmp_path)
    path.write_text("train: {}\n")
    with pytest.raises(ParamsError, match="unknown key"):
        load_profile("odd", root=tmp_path)


def test_resolve_applies_profile_and_keeps_paper_values(tmp_path):
    write(tmp_path, "pretrain/coco", "kind: pretrain\ndataset: coco\nepochs: 400\nweight_decay: 1e-4\n")
    write(tmp_path, "profiles/small", "pretrain: {epochs: 3, batch_size: 64}\n")
    write(tmp_path, "profiles/paper", "description: as written\n")
    exp = load_experiment("pretrain/coco", root=tmp_path)
    small = resolve(exp, load_profile("small", root=tmp_path))
    full = resolve(exp, load_profile("paper", root=tmp_path))
    assert (small.epochs, small.batch_size, small.dataset) == (3, 64, "coco")
    assert (full.epochs, full.batch_size, full.base_lr, full.temperature, full.weight_decay) == (400, 256, 0.3, 0.2, 1e-4)
    assert params_hash(small) != params_hash(full)
    assert params_hash(full) == params_hash(dataclasses.replace(full))


def test_project_params_all_load():
    from revisit.config import list_experiments

    names = list_experiments()
    assert "pretrain/moco_coco_400ep" in names and "linear/table2_random_init" in names
    for profile in ("smoke", "cpu", "gpu", "paper"):
        for name in names:
            resolve(load_experiment(name), load_profile(profile))


def test_dataset_names_agree_across_modules():
    """Params, real loaders, twins and the results table must name the same datasets."""
    from revisit.config import EVALUATIONS, PRETRAIN_SETS, TARGET_SETS
    from revisit.linear import protocol
    from revisit.data import twins
    from revisit.data.loaders import PRETRAIN_LOADERS, TARGET_LOADERS, TARGET_SPLITS
    from revisit.results import TARGET_COLUMNS

    assert set(PRETRAIN_SETS) == set(PRETRAIN_LOADERS) == set(twins.PRETRAIN_TWINS)
    assert set(TARGET_SETS) == set(TARGET_LOADERS) == set(TARGET_SPLITS) == set(twins.TARGET_TWINS)
    assert set(EVALUATIONS) == set(TARGET_COLUMNS) and {protocol(e)[0] for e in EVALUATIONS} == set(TARGET_SETS)


def test_base_inherits_and_overrides(tmp_path):
    write(tmp_path, "pretrain/a", "kind: pretrain\ndataset: coco\nepochs: 200\n")
    write(tmp_path, "pretrain/b", "kind: pretrain\nbase: pretrain/a\ntitle: B\nsmall_crops: 4\n")
    b = load_experiment("pretrain/b", tmp_path)
    assert b.values == {"dataset": "coco", "epochs": 200, "small_crops": 4} and b.title == "B"
    write(tmp_path, "pretrain/c", "kind: pretrain\nbase: pretrain/c\n")
    with pytest.raises(ParamsError, match="loops"):
        load_experiment("pretrain/c", tmp_path)
    write(tmp_path, "linear/d", "kind: linear\nbase: pretrain/a\n")
    with pytest.raises(ParamsError, match="not linear"):
        load_experiment("linear/d", tmp_path)


def test_profile_scale_keeps_the_paper_ratios(tmp_path):
    write(tmp_path, "profiles/tiny", "scale: {epochs: 0.02, crop_size: 0.142857, momentum: 10}\n"
          "pretrain: {images: 100}\n")
    profile = load_profile("tiny", tmp_path)
    for epochs, size, m, expect in [(200, 160, 0.995, (4, 23, 0.95)), (800, 224, 0.999, (16, 32, 0.99))]:
        write(tmp_path, "pretrain/x", f"kind: pretrain\nepochs: {epochs}\ncrop_size: {size}\nmomentum: {m}\n")
        p = resolve(load_experiment("pretrain/x", tmp_path), profile)
        assert (p.epochs, p.crop_size, p.momentum) == expect and p.images == 100


@pytest.mark.parametrize("body, message", [
    ("scale: {epochs: 0.5}\npretrain: {epochs: 3}\n", "both scaled and set"),
    ("scale: {policy: 2}\n", "not a numeric parameter"),
    ("scale: {epochs: -1}\n", r"\[scale\]: key 'epochs' is -1.0; allowed range \(0.0, inf\)"),
    ("scale: {epochs: 0}\n", r"\[scale\]: key 'epochs' is 0.0; allowed range \(0.0, inf\)"),
    ("scale: {epochs: .nan}\n", r"\[scale\]: key 'epochs' is nan, not a finite number"),
    ("scale: {crop_size: .inf}\n", r"\[scale\]: key 'crop_size' is inf, not a finite number"),
    ("scale: {epochs: inf}\n", r"\[scale\]: key 'epochs' is inf, not a finite number"),
    ("scale: {momentum: 1000}\n", r"\[scale\]: key 'momentum' is 1000.0; it scales 1 - m"),
    ("pretrain: {base_lr: .nan}\n", r"\[pretrain\]: key 'base_lr' is nan, not a finite number"),
    ("linear: {svm_C: inf}\n", r"\[linear\]: key 'svm_C' is inf, not a finite number"),
    ("transfer: {schedule: -.inf}\n", r"\[transfer\]: key 'schedule' is -inf, not a finite number"),
    ("pretrain: {epochs: 1e12}\n", r"\[pretrain\]: key 'epochs' is 1000000000000; allowed range \[1, 100000\]"),
    ("experiments:\n  pretrain/*: {imagez: 3}\n", "imagez"),
    ("seeds: 0\n", r"key 'seeds' is 0; allowed range \[1, 100\]"),
    ("seeds: three\n", "key 'seeds' must be int"),
])
def test_bad_profile_scale_or_pattern(tmp_path, body, message):
    path = write(tmp_path, "profiles/bad", body)
    with pytest.raises(ParamsError, match=message) as err:
        load_profile("bad", tmp_path)
    assert str(path) in str(err.value)


def test_profile_experiment_patterns_apply_last(tmp_path):
    write(tmp_path, "pretrain/group/a", "kind: pretrain\nepochs: 200\n")
    write(tmp_path, "pretrain/other", "kind: pretrain\nepochs: 200\n")
    write(tmp_path, "profiles/p", "scale: {epochs: 0.02}\npretrain: {images: 4000}\n"
          "experiments:\n  pretrain/group/*: {images: 1000, epochs: 2}\n")
    profile = load_profile("p", tmp_path)
    a = resolve(load_experiment("pretrain/group/a", tmp_path), profile)
    other = resolve(load_experiment("pretrain/other", tmp_path), profile)
    assert (a.images, a.epochs) == (1000, 2) and (other.images, other.epochs) == (4000, 4)


@pytest.mark.parametrize("spelling", [".nan", ".NaN", ".NAN", ".inf", ".Inf", "+.inf", "-.inf", "-.Inf",
                                      "nan", "NaN", "inf", "-inf", "infinity", "-Infinity", "1e999"])
def test_no_spelling_of_nan_or_inf_passes(tmp_path, spelling):
    """YAML's tags (.nan, .inf) and plain strings Python's float() reads (nan, inf, infinity) alike."""
    write(tmp_path, "profiles/p", f"scale: {{epochs: 0.5}}\nexperiments:\n  pretrain/*: {{nn_lambda: {spelling}}}\n")
    path = write(tmp_path, "pretrain/x", f"kind: pretrain\nbase_lr: {spelling}\n")
    with pytest.raises(ParamsError, match=f"{path}: key 'base_lr' is .*(nan|inf), not a finite number"):
        load_experiment("pretrain/x", tmp_path)
    path.write_text("kind: pretrain\n")
    with pytest.raises(ParamsError, match=r"p.yaml \[experiments: pretrain/\*\]: key 'nn_lambda' is .*, not a finite"):
        resolve(load_experiment("pretrain/x", tmp_path), load_profile("p", tmp_path))


def test_numbers_in_any_spelling_and_paper_sizes_are_accepted(tmp_path):
    """1e2 (a string to YAML) and 1.0e+2 (a float) are 100 to an int field; 0 is fine where it means "off"."""
    write(tmp_path, "pretrain/x", "kind: pretrain\nepochs: 1e2\nqueue_size: 6.5536e+4\nbatch_size: 4096\n"
          "images: 1281167\nbase_lr: 3e-1\nweight_decay: 0\nnn_lambda: 0\nmin_overlap: 0\n"
          "crop_scale: [0.08, 1]\nsmall_crop_scale: [0.14, 0.14]\n")
    values = load_experiment("pretrain/x", tmp_path).values
    assert values["epochs"] == 100 and type(values["epochs"]) is int and values["queue_size"] == 65536
    assert values["base_lr"] == 0.3 and values["crop_scale"] == (0.08, 1.0)
    assert values["small_crop_scale"] == (0.14, 0.14)
    write(tmp_path, "linear/y", "kind: linear\nsgd_milestones: [60, 80]\nsgd_weight_decay: 0\n")
    assert load_experiment("linear/y", tmp_path).values["sgd_milestones"] == (60, 80)


def test_missing_base_names_the_file_and_key(tmp_path):
    path = write(tmp_path, "pretrain/x", "kind: pretrain\nbase: pretrain/no_such_run\n")
    with pytest.raises(ParamsError) as err:
        load_experiment("pretrain/x", tmp_path)
    assert str(err.value) == (f"{path}: key 'base' names 'pretrain/no_such_run', but "
                              f"{tmp_path}/pretrain/no_such_run.yaml does not exist; `revisit list` shows the experiments")


def test_missing_experiment_names_the_referrer(tmp_path):
    """A caller that read the name from another file (a linear run's ``pretrain:``) passes where it was written."""
    with pytest.raises(ParamsError) as err:
        load_experiment("pretrain/gone", tmp_path, referrer="params/linear/x.yaml: key 'pretrain'")
    assert str(err.value) == (f"params/linear/x.yaml: key 'pretrain' names 'pretrain/gone', but "
                              f"{tmp_path}/pretrain/gone.yaml does not exist; `revisit list` shows the experiments")


@pytest.mark.parametrize("profile, experiment, message", [
    ("scale: {small_crop_size: 0.01}\n", "small_crops: 2\n", "key 'small_crop_size' is 1; allowed range [4, 4096]"),
    ("scale: {epochs: 1000}\n", "epochs: 400\n", "key 'epochs' is 400000; allowed range [1, 100000]"),
    ("scale: {momentum: 100}\n", "momentum: 0.9\n", "key 'momentum' is -9.0; allowed range [0.0, 1.0]"),
    ("scale: {images: 1e300}\n", "images: 1000000000\n", "key 'images' is inf, not a finite number"),
    ("scale: {base_lr: 1e-300}\n", "base_lr: 1e-300\n", "key 'base_lr' is 0.0; allowed range (0.0, inf)"),
    ("experiments:\n  pretrain/*: {crop_scale: [0.9, 0.1]}\n", "",
     "[experiments: pretrain/*]: key 'crop_scale' is [0.9, 0.1]; the values must be increasing"),
])
def test_profile_cannot_make_a_value_the_file_could_not_hold(tmp_path, profile, experiment, message):
    path = write(tmp_path, "profiles/p", profile)
    write(tmp_path, "pretrain/x", "kind: pretrain\n" + experiment)
    with pytest.raises(ParamsError) as err:
        resolve(load_experiment("pretrain/x", tmp_path), load_profile("p", tmp_path))
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_a_replica_trains_at_a_raised_seed_and_keeps_everything_else(tmp_path, monkeypatch):
    """``name@seed<n>``: the pretraining run's seed is raised by n, its evaluation reads that replica with its own
    params unchanged (same test images), and replica 0 is the params file's run, id and all."""
    from revisit.runs import plan, replica_of, replicas

    write(tmp_path, "pretrain/coco", "kind: pretrain\ndataset: coco\nseed: 5\n")
    write(tmp_path, "linear/coco", "kind: linear\npretrain: pretrain/coco\n")
    write(tmp_path, "linear/random", "kind: linear\n")
    write(tmp_path, "profiles/small", "pretrain: {epochs: 3}\nseeds: 3\n")
    monkeypatch.setenv("REVISIT_PARAMS", str(tmp_path))
    profile = load_profile("small", root=tmp_path)
    assert profile.seeds == 3
    assert replicas("linear/coco", 3) == ["linear/coco", "linear/coco@seed1", "linear/coco@seed2"]
    assert replica_of("linear/coco@seed2") == ("linear/coco", 2) and replica_of("linear/coco") == ("linear/coco", 0)
    base, second = plan("linear/coco", profile), plan("linear/coco@seed2", profile)
    assert (base.needs.params.seed, second.needs.params.seed) == (5, 7)
    assert second.params == base.params  # the evaluation itself, and so its test images, are the same
    assert second.name == "linear/coco@seed2" and second.needs.name == "pretrain/coco@seed2"
    assert len({base.run_id, second.run_id, plan("linear/coco@seed1", profile).run_id}) == 3
    assert base.run_id.startswith("linear__coco--") and second.run_id.startswith("linear__coco@seed2--")
    assert plan("pretrain/coco@seed2", profile).run_id == second.needs.run_id
    write(tmp_path, "linear/last", f"kind: linear\nseed: {MAX_SEED}\n")
    for bad, message in (("linear/coco@seed0", "a replica is named"), ("linear/coco@seedx", "a replica is named"),
                         ("linear/last@seed1", "past the largest seed")):
        with pytest.raises(ParamsError, match=message):
            plan(bad, profile)


def test_a_random_init_replica_draws_another_backbone_on_the_same_targets(tmp_path, monkeypatch):
    """A random-init. evaluation has no pretraining seed: its replica keeps the params (the seed draws the target
    twins too) and initialises the backbone at the raised seed."""
    import torch
    from revisit.backbones import build_backbone, evaluated_backbone
    from revisit.runs import plan

    write(tmp_path, "linear/random", "kind: linear\narch: resnet_small\nwidth: 4\nseed: 3\n")
    write(tmp_path, "profiles/small", "seeds: 2\n")
    monkeypatch.setenv("REVISIT_PARAMS", str(tmp_path))
    profile = load_profile("small", root=tmp_path)
    base, second = plan("linear/random", profile), plan("linear/random@seed1", profile)
    assert second.params == base.params and second.run_id != base.run_id
    nets = [evaluated_backbone(run)[0].state_dict() for run in (base, second)]
    torch.manual_seed(4)  # seed 3, raised by 1
    expected = build_backbone("resnet_small", 4).state_dict()
    assert all(torch.equal(nets[1][k], expected[k]) for k in expected)
    assert not all(torch.equal(nets[0][k], nets[1][k]) for k in expected)


def test_a_new_training_version_makes_pretraining_runs_and_their_evaluations_anew(tmp_path, monkeypatch):
    """Training code that computes something else from the same params must not reuse finished runs: the version
    enters the pretraining run's id, and through ``pretrain_run`` its evaluations'; a random-init. one keeps its id."""
    from revisit import runs

    write(tmp_path, "pretrain/p", "kind: pretrain\narch: resnet_small\n")
    write(tmp_path, "linear/of_p", "kind: linear\narch: resnet_small\npretrain: pretrain/p\n")
    write(tmp_path, "linear/random", "kind: linear\narch: resnet_small\n")
    write(tmp_path, "profiles/small", "seeds: 1\n")
    monkeypatch.setenv("REVISIT_PARAMS", str(tmp_path))
    profile = load_profile("small", root=tmp_path)
    before = [runs.plan(name, profile).run_id for name in ("pretrain/p", "linear/of_p", "linear/random")]
    monkeypatch.setattr(runs, "TRAINING_VERSION", runs.TRAINING_VERSION + 1)
    after = [runs.plan(name, profile).run_id for name in ("pretrain/p", "linear/of_p", "linear/random")]
    assert after[0] != before[0] and after[1] != before[1] and after[2] == before[2]
