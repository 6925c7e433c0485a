"""Kernels started side by side never collide, a kernel that dies at start is started again, a failing cell is not;
kernels forked from the batch's zygote have its imports and die with their client."""
import os
import subprocess
import sys
import time

import nbformat
import papermill
import pytest

from revisit import kernels


def trivial_notebook(path, source="print(value * 2)"):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("value = 1", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell(source)],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, path)
    return path


def test_eight_kernels_started_at_once_all_run(tmp_path):
    source = trivial_notebook(tmp_path / "trivial.ipynb")
    script = ("import sys; from revisit.kernels import execute_notebook; "
              "execute_notebook(sys.argv[1], sys.argv[2], {'value': int(sys.argv[3])}, '.', sys.stdout)")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(source), str(tmp_path / f"out{i}.ipynb"), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(8)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, outputs
    for i in range(8):
        cells = nbformat.read(tmp_path / f"out{i}.ipynb", as_version=4).cells
        assert cells[-1].outputs[0].text == f"{2 * i}\n"  # each ran with its own parameters
    assert not any("Address already in use" in out for out in outputs)


def test_kernels_talk_over_ipc_on_sockets_of_their_own():
    a, b = kernels.IpcKernelManager(), kernels.IpcKernelManager()
    assert a.transport == b.transport == "ipc" and a.ip != b.ip


def test_a_kernel_that_dies_at_start_is_started_again(tmp_path, monkeypatch):
    source, output = trivial_notebook(tmp_path / "nb.ipynb"), tmp_path / "out.ipynb"
    real, calls, said = papermill.execute_notebook, [], []

    def dies_twice(*args, **kwargs):
        calls.append(kwargs["kernel_manager_class"])
        if len(calls) < 3:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", dies_twice)
    kernels.execute_notebook(source, output, {"value": 21}, ".", sys.stdout, echo=said.append)
    assert len(calls) == 3 and all(c is kernels.IpcKernelManager for c in calls)
    assert len(said) == 2 and "died before it answered" in said[0] and "(2/3)" in said[0]
    assert nbformat.read(output, as_version=4).cells[-1].outputs[0].text == "42\n"


def test_kernel_start_gives_up_after_its_tries(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(RuntimeError("no kernel")))
    with pytest.raises(RuntimeError, match="no kernel"):
        kernels.execute_notebook(tmp_path / "nb.ipynb", tmp_path / "out.ipynb", {}, ".", sys.stdout, echo=print)
    assert len(calls) == kernels.START_TRIES


def test_a_failing_cell_is_not_retried(tmp_path, monkeypatch):
    source = trivial_notebook(tmp_path / "nb.ipynb", "raise ValueError('broken cell')")
    real, calls = papermill.execute_notebook, []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(papermill.PapermillExecutionError, match="broken cell"):
        kernels.execute_notebook(source, tmp_path / "out.ipynb", {}, ".", sys.stdout, echo=print)
    assert len(calls) == 1


def test_a_full_disk_leaves_the_last_complete_notebook(tmp_path, monkeypatch):
    import errno

    from revisit import rundir

    source, output = trivial_notebook(tmp_path / "nb.ipynb"), tmp_path / "out.ipynb"
    real, writes = rundir.write_text, []

    def full_after_two(path, text):  # papermill saves the notebook after every cell; the disk fills up
        writes.append(path)
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(rundir, "write_text", full_after_two)
    with pytest.raises(OSError, match="No space left"):
        kernels.execute_notebook(source, output, {}, ".", sys.stdout, echo=print)
    assert nbformat.read(output, as_version=4).cells  # complete JSON, not cut
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb", "out.ipynb"]  # no temporary left


@pytest.fixture(scope="module")
def warm():
    """A zygote for this module's tests (it imports torch and the library once, a few seconds)."""
    from revisit import zygote

    with zygote.running() as path:
        yield path


def test_a_kernel_forked_from_the_zygote_has_the_imports_and_its_own_run(warm, tmp_path):
    import psutil

    source = trivial_notebook(tmp_path / "nb.ipynb", "import os, sys\nprint(value * 2, 'torch' in sys.modules, "
                                                      "os.getcwd(), os.environ.get('MARK'), os.getppid())")
    zygote_pid = next(p.pid for p in psutil.Process().children() if "--serve" in p.cmdline())
    os.environ["MARK"] = "this run's environment"
    try:
        for value in (1, 2):
            output = tmp_path / f"out{value}.ipynb"
            kernels.execute_notebook(source, output, {"value": value}, tmp_path, sys.stdout)
            text = nbformat.read(output, as_version=4).cells[-1].outputs[0].text
            assert text == f"{2 * value} True {tmp_path} this run's environment {zygote_pid}\n"  # preloaded, forked
            # from the zygote, in its own folder and environment
    finally:
        del os.environ["MARK"]


def test_a_killed_client_takes_its_forked_kernel_with_it(warm, tmp_path):
    import asyncio
    import json

    import psutil

    connection = tmp_path / "kernel.json"
    manager = kernels.IpcKernelManager(connection_file=str(connection))
    manager.write_connection_file()
    cmd = manager.format_kernel_cmd()
    assert cmd[1:4] == ["-m", "revisit.zygote", warm]
    client = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    zygote = next(p for p in psutil.Process().children() if "--serve" in p.cmdline())
    deadline = time.time() + 60
    while not zygote.children() and time.time() < deadline:
        time.sleep(0.1)
    kernel = zygote.children()[0]
    assert json.loads(connection.read_text())["transport"] == "ipc" and kernel.is_running()
    client.kill()
    client.wait()
    kernel.wait(timeout=10)  # the kernel saw its client's connection close and exited
    asyncio.run(manager.cleanup_resources())  # its connection file and IPC sockets


def test_a_run_stopped_by_a_signal_leaves_no_kernel_to_write_after_it(warm, tmp_path):
    """SIGTERM in a batch raises ``Terminated`` out of papermill mid-cell, past its cleanup: the kernel must be gone
    when ``execute_notebook`` raises, or it could still write results after the batch recorded the run stopped."""
    import signal

    import psutil

    from revisit.batch import Terminated

    late = tmp_path / "late.txt"
    source = trivial_notebook(tmp_path / "nb.ipynb", f"import time\ntime.sleep(6)\nopen({str(late)!r}, 'w')")
    zygote = next(p for p in psutil.Process().children() if "--serve" in p.cmdline())

    def terminated(signum, frame):
        raise Terminated(signal.SIGTERM)

    previous = signal.signal(signal.SIGALRM, terminated)
    try:
        signal.alarm(3)
        with pytest.raises(Terminated):
            kernels.execute_notebook(source, tmp_path / "out.ipynb", {"value": 1}, tmp_path, sys.stdout)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not [p for p in zygote.children() if p.status() != psutil.STATUS_ZOMBIE]  # the kernel is gone
    time.sleep(6)
    assert not late.exists()


def test_a_forked_kernel_outlives_its_zygote_but_not_its_client(tmp_path, monkeypatch):
    """A batch killed by SIGKILL takes its zygote down at once; its kernels must stay until their runs stop them (an
    orderly stop records why), then go with their clients. A kernel forked later does not hold an earlier one's
    connection, so each client sees its own kernel end."""
    import psutil

    from revisit import zygote

    def fork_kernel(server, name):
        manager = kernels.IpcKernelManager(connection_file=str(tmp_path / f"{name}.json"))
        manager.write_connection_file()
        known = {k.pid for k in server.children()}
        client = subprocess.Popen(manager.format_kernel_cmd(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "JPY_PARENT_PID": str(os.getpid())})  # as jupyter_client
        deadline = time.time() + 120
        while not (new := [k for k in server.children() if k.pid not in known]) and time.time() < deadline:
            time.sleep(0.1)
        return client, new[0]

    monkeypatch.delenv(zygote.SOCKET_ENV, raising=False)  # a zygote of its own, not the module's (it is killed)
    with zygote.running() as path:
        server = next(p for p in psutil.Process().children() if path in p.cmdline())
        (client_a, kernel_a), (client_b, kernel_b) = fork_kernel(server, "a"), fork_kernel(server, "b")
        server.terminate()
        server.wait(timeout=30)
        time.sleep(3)  # ipykernel's parent poller would have ended both within a second
        assert kernel_a.is_running() and kernel_b.is_running() and client_a.poll() is None
        kernel_a.terminate()
        assert client_a.wait(timeout=10) != 0  # its client saw it end, though kernel b was forked after it
        client_b.kill()
        kernel_b.wait(timeout=10)  # went with its client
