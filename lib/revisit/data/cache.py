"""The twins' cache: a generated twin (Section 3's images, App. A.3-A.7's dense sets) stored as ``.npz``, so
runs that share a twin draw it once.

Both twin families use this folder, key and write; each packs its own results into arrays and back.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..config import PROJECT_ROOT
from ..rundir import replacing


def folder(cache_dir=None) -> Path:
    """Where twins are cached: ``cache_dir``, else ``$REVISIT_CACHE``, else ``<project>/.cache/twins``."""
    return Path(cache_dir or os.environ.get("REVISIT_CACHE", PROJECT_ROOT / ".cache" / "twins"))


def key(fn, args, kwargs, versions) -> str:
    """16 hex digits naming a call: the function, its arguments and the recipe ``versions`` it was drawn with (a new
    recipe is new data)."""
    return hashlib.sha256(repr((fn.__name__, args, sorted(kwargs.items()), *versions)).encode()).hexdigest()[:16]


def write(path: Path, arrays: dict):
    """``np.savez`` written atomically (``rundir.replacing``): a concurrent reader never sees half a file, and runs
    side by side that draw the same twin each write whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as handle:  # an open file: numpy adds no ``.npz`` suffix
        np.savez(handle, **arrays)


def cached(fn, args, kwargs, *, stem: str, versions: tuple, pack, unpack, cache_dir=None):
    """``fn(*args, **kwargs)``, read from ``<folder>/<stem>-<key>.npz`` if there, else made and stored;
    ``pack(result)`` gives the arrays to store and ``unpack(npz)`` the result back."""
    path = folder(cache_dir) / f"{stem}-{key(fn, args, kwargs, versions)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return unpack(z)
    result = fn(*args, **kwargs)
    write(path, pack(result))
    return result
