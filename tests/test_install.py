"""The GPU hosts' conda environment installs what the CPU book and the tests run: the same torch and torchvision as
the Makefile, and every dependency of the package, each pinned."""
import re
import tomllib

import yaml

from revisit.config import PROJECT_ROOT


def pins() -> dict:
    spec = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip, = [entry["pip"] for entry in spec["dependencies"] if isinstance(entry, dict)]
    return dict(line.split("==") for line in pip)


def test_environment_yml_pins_the_makefiles_torch_and_every_dependency():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    expected = dict(re.findall(r"\b(torch|torchvision)==([\w.]+)", makefile))
    assert expected.keys() == {"torch", "torchvision"}
    env = {name.lower(): version for name, version in pins().items()}
    assert {name: env.get(name) for name in expected} == expected
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower() for requirement in needed}
    assert names - env.keys() == set()  # each with an exact version
