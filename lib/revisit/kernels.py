"""Papermill on kernels that cannot collide, and a bounded retry of a kernel that dies before it answers.

Kernels started side by side over TCP each pick free ports, and two can pick the same one ("Address
already in use"), which kills a run at start. Ours talk over IPC instead: Unix sockets named after the
kernel's own connection file, so no two kernels share an address. A kernel that still dies before its
first cell starts (a busy machine, a slow file system) is started again, up to ``START_TRIES`` times;
a cell that fails is never retried. A kernel ends by itself within a second when the process that
started it dies (ipykernel's parent poller), so a killed run leaves no kernel behind. Papermill's
local writes (the executed notebook, after every cell) go through ``rundir.write_text``, so a full
disk leaves the last complete notebook rather than one cut mid-JSON.
"""
from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.iorw import papermill_io
from traitlets import CaselessStrEnum, default

from . import rundir, zygote


START_TRIES = 3


ATOMIC = "atomic://"  # papermill output paths under this scheme are written through rundir.write_text


class AtomicHandler:
    """Papermill I/O for ``atomic://<absolute path>``: papermill writes the executed notebook after every cell,
    and this way each write replaces the last complete one instead of truncating it first."""

    @staticmethod
    def write(buf, path):
        rundir.write_text(path[len(ATOMIC):], buf)

    @staticmethod
    def pretty_path(path):
        return path[len(ATOMIC):]


papermill_io.register(ATOMIC, AtomicHandler())


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels use the IPC transport instead of TCP ports, on socket paths of their own.

    (jupyter_client's default IPC path is ``kernel-ipc`` in the working directory, shared by every kernel
    started there before its connection file is named: kernels side by side would race for it.)"""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _unique_ip(self):
        return str(Path(tempfile.gettempdir()) / f"revisit-kernel-{uuid.uuid4().hex[:16]}")

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        """ipykernel's command, or where the batch runs a zygote (``revisit.zygote``) the client that forks the
        kernel from it, with every import of the runner notebooks already done."""
        cmd = super().format_kernel_cmd(extra_arguments)
        path = os.environ.get(zygote.SOCKET_ENV)
        if path and cmd[1:3] == ["-m", "ipykernel_launcher"]:
            return [cmd[0], "-m", "revisit.zygote", path, *cmd[3:]]
        return cmd


def _started(output: Path) -> bool:
    """Whether papermill started any cell of the notebook it wrote (a cell's ``start_time`` is set)."""
    try:
        cells = json.loads(Path(output).read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return False
    return any(cell.get("metadata", {}).get("papermill", {}).get("start_time") for cell in cells)


def execute_notebook(notebook, output, parameters: dict, cwd, stream, echo=print):
    """Execute ``notebook`` into ``output`` with papermill on an IPC kernel (its ``python3`` kernel spec);
    cell output goes to ``stream``. Raises what papermill raises once a cell has started or tries run out."""
    for attempt in range(1, START_TRIES + 1):
        try:
            return papermill.execute_notebook(notebook, ATOMIC + str(Path(output).absolute()), parameters=parameters,
                                              kernel_name="python3", cwd=str(cwd), progress_bar=False,
                                              log_output=True, stdout_file=stream, stderr_file=stream,
                                              kernel_manager_class=IpcKernelManager)
        except papermill.PapermillExecutionError:
            raise
        except Exception as err:  # noqa: BLE001 - jupyter_client and zmq raise many kinds at start
            if attempt == START_TRIES or _started(output):
                raise
            echo(f"the kernel died before it answered ({type(err).__name__}: {err}); starting another "
                 f"({attempt + 1}/{START_TRIES})")
