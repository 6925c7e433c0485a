"""Params files and profiles: validation errors name the file, the key and what is allowed."""
import dataclasses

import pytest

from revisit.config import ParamsError, load_experiment, load_profile, params_hash, resolve


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
])
def test_bad_params_file(tmp_path, body, message):
    path = write(tmp_path, "pretrain/bad", body)
    with pytest.raises(ParamsError) as err:
        load_experiment("pretrain/bad", root=tmp_path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_and_profile(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
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
    for profile in ("smoke", "cpu", "paper"):
        for name in names:
            resolve(load_experiment(name), load_profile(profile))


def test_dataset_names_agree_across_modules():
    """Params, real loaders, twins and the results table must name the same datasets."""
    from revisit.config import EVALUATIONS, PRETRAIN_SETS, TARGET_SETS
    from revisit.evaluations import protocol
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
    ("scale: {epochs: -1}\n", "positive"),
    ("experiments:\n  pretrain/*: {imagez: 3}\n", "imagez"),
])
def test_bad_profile_scale_or_pattern(tmp_path, body, message):
    write(tmp_path, "profiles/bad", body)
    with pytest.raises(ParamsError, match=message):
        load_profile("bad", tmp_path)


def test_profile_experiment_patterns_apply_last(tmp_path):
    write(tmp_path, "pretrain/group/a", "kind: pretrain\nepochs: 200\n")
    write(tmp_path, "pretrain/other", "kind: pretrain\nepochs: 200\n")
    write(tmp_path, "profiles/p", "scale: {epochs: 0.02}\npretrain: {images: 4000}\n"
          "experiments:\n  pretrain/group/*: {images: 1000, epochs: 2}\n")
    profile = load_profile("p", tmp_path)
    a = resolve(load_experiment("pretrain/group/a", tmp_path), profile)
    other = resolve(load_experiment("pretrain/other", tmp_path), profile)
    assert (a.images, a.epochs) == (1000, 2) and (other.images, other.epochs) == (4000, 4)
