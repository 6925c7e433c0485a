"""Kernels forked from a warm process: a run's imports are paid once per batch, not once per run.

A run's kernel spends 4-6 s of a CPU run importing torch, torchvision, scikit-learn, pandas and the library before
its first line of work, and papermill starts one kernel per run. ``revisit batch`` therefore starts one *zygote*
(``serve``): a process that imports what the runner notebooks import, then waits on a Unix socket. A run's kernel
manager (``kernels.IpcKernelManager``) launches, in place of ``python -m ipykernel_launcher -f <connection file>``,
this module's small client, which hands the zygote its working folder, environment and standard streams; the
zygote forks and the fork becomes the kernel, with every module already imported.

The client stands in for the kernel towards jupyter_client: it forwards the signals it gets (interrupts, SIGTERM)
and exits with the kernel's status. When the client dies (SIGKILL from jupyter_client, or with its run), the kernel
sees its connection close and exits at once. Nothing but imports runs in the zygote: no torch thread pool, no CUDA
context, so forking it is safe. Without a zygote (its socket never appears) the client execs a normal kernel.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SOCKET_ENV = "REVISIT_ZYGOTE"  # the socket of the batch's zygote; kernels started by its runs fork from it
PRELOAD = ("numpy", "pandas", "torch", "torchvision", "torchvision.models.detection", "sklearn.linear_model",
           "sklearn.svm", "sklearn.cluster", "kornia.augmentation", "revisit.train", "revisit.linear", "revisit.dense",
           "revisit.dense.finetune", "revisit.dense.detection", "revisit.dense.detectron2_backend",
           "revisit.dense.propagation", "revisit.dense.retrieval", "revisit.dense.cams", "revisit.data.dense_twins",
           "revisit.rundir", "revisit.runs",
           "ipykernel.kernelapp")  # what the runner notebooks and the tasks they call import
WAIT_FOR_ZYGOTE = 180.0  # seconds a client waits for the zygote's socket (the zygote is importing) before it
# starts a kernel of its own


def die_with_parent(parent: int | None = None):
    """Ask Linux to send this process SIGTERM when its parent dies (even by SIGKILL). With ``parent`` (the pid the
    caller expects as its parent, e.g. in a ``preexec_fn``), exit at once if that parent died before the request."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        if parent is not None and os.getppid() != parent:
            os._exit(1)


# ---- the zygote ------------------------------------------------------------------------------------------------

def serve(path: str, preload=PRELOAD):
    """Import ``preload``, then fork a kernel for every client that connects to the Unix socket ``path`` (created
    once the imports are done, so that its existence means ready); runs until SIGTERM or its parent dies."""
    import gc
    import importlib

    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for name in preload:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # the imported objects stay out of the collector: forks share their memory pages
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = f"{path}.{os.getpid()}.tmp"
    listener.bind(staging)
    listener.listen(64)
    os.replace(staging, path)
    children: dict[int, socket.socket] = {}
    try:
        while True:
            if select.select([listener], [], [], 0.25)[0]:
                conn, _ = listener.accept()
                pid = _fork_kernel(listener, conn, children.values())
                if pid:
                    children[pid] = conn
            _reap(children)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _fork_kernel(listener: socket.socket, conn: socket.socket, others=()) -> int | None:
    """Read a client's request (JSON and its three standard streams) and fork the kernel; the child never returns.
    The child closes the connections of the ``others`` kernels: a client whose zygote died sees its kernel end
    when no process but that kernel holds the other end."""
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(message)
    except (OSError, ValueError):
        conn.close()
        return None
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for sock in (listener, *others):
                sock.close()
            code = _become_kernel(conn, request, fds)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        conn.sendall(f"{pid}\n".encode())
    return pid


def _become_kernel(conn: socket.socket, request: dict, fds: list[int]) -> int:
    """In the fork: take the client's streams, folder and environment, then run ipykernel until it shuts down."""
    import threading

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["ipykernel_launcher", *request["argv"]]

    def exit_when_client_dies():
        while conn.recv(1):
            pass
        os._exit(1)

    threading.Thread(target=exit_when_client_dies, daemon=True).start()
    from ipykernel.kernelapp import IPKernelApp

    # No parent poller: it would end the kernel within a second of the zygote's death (reparented to init), and a
    # batch killed by SIGKILL takes its zygote down at once, racing its runs' orderly stop. The kernel lives as long
    # as its client (the thread above), which dies with the run's process.
    app = IPKernelApp.instance(parent_handle=0)
    app.initialize(request["argv"])
    app.start()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return 0


def _reap(children: dict):
    """Tell the client of every kernel that ended its exit status (negative: killed by that signal)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


@contextlib.contextmanager
def running():
    """Start a zygote for the runs this process starts (children inherit ``SOCKET_ENV``) and stop it afterwards;
    inside a batch that already has one, use that one."""
    if os.environ.get(SOCKET_ENV):
        yield os.environ[SOCKET_ENV]
        return
    path = str(Path(tempfile.gettempdir()) / f"revisit-zygote-{uuid.uuid4().hex[:12]}")
    proc = subprocess.Popen([sys.executable, "-m", "revisit.zygote", "--serve", path], stdin=subprocess.DEVNULL)
    os.environ[SOCKET_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(SOCKET_ENV, None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(OSError):
            os.unlink(path)


# ---- the client: what jupyter_client starts as the kernel -----------------------------------------------------

def _connect(path: str, wait: float) -> socket.socket | None:
    deadline = time.monotonic() + wait
    while True:
        if os.path.exists(path):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.connect(path)
                return conn
            except OSError:
                conn.close()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def client(path: str, argv: list[str], wait: float = WAIT_FOR_ZYGOTE) -> int:
    """Have the zygote at ``path`` fork a kernel with ipykernel's ``argv``, stand in for it and return its exit
    status; without a zygote, become an ordinary kernel."""
    die_with_parent()  # jupyter_client's process died: so does the kernel, through the closed connection
    conn = _connect(path, wait)
    if conn is None:
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    replies = conn.makefile("r")
    line = replies.readline()
    if not line:
        return 1
    pid = int(line)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
    status = replies.readline()
    if not status:
        return 1  # the zygote died, then the kernel (its end of the connection closed): its status is lost
    code = int(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        sys.exit(client(sys.argv[1], sys.argv[2:]))
