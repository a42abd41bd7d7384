"""PDFs rendered in processes of their own (the worker's pool): the same document, and a dead process replaced."""
from __future__ import annotations

import pytest

from cycles import pdf

HTML = "<h1>Final Test Report</h1><table><tr><th>Attribute</th><td>balance</td></tr></table>"


@pytest.fixture
def pool():
    pdf.start_pool(1)
    yield pdf
    pdf.stop_pool()


def test_the_pool_renders_what_this_process_renders(pool):
    rendered = pool.render(HTML)
    assert rendered.startswith(b"%PDF") and pool.pool_size() == 1
    # Without a pool the rendering happens here; the document has the same pages.
    here = pdf.render_here(HTML)
    assert here.startswith(b"%PDF") and rendered.count(b"/Type /Page\n") == here.count(b"/Type /Page\n")


def test_a_rendering_process_that_dies_fails_that_rendering_only(pool):
    assert pool.render(HTML).startswith(b"%PDF")
    (process,) = pool._pool._processes.values()
    process.kill()
    process.join()
    # The activity that was rendering fails with an error Temporal retries; the next one gets a new process.
    with pytest.raises(pdf.RenderingFailed):
        pool.render(HTML)
    assert pool.render(HTML).startswith(b"%PDF")


def test_stopped_the_rendering_is_back_in_this_process():
    pdf.start_pool(1)
    pdf.stop_pool()
    assert pdf.pool_size() == 0 and pdf._pool is None
    assert pdf.render(HTML).startswith(b"%PDF")


def test_the_rendering_processes_leave_when_the_worker_is_killed(tmp_path):
    """A worker killed with SIGKILL (the fault tests do it) left its rendering processes running before."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, time\n"
        "from cycles import pdf\n"
        "if __name__ == '__main__':\n"
        "    pdf.start_pool(2)\n"
        "    print(' '.join(str(p) for p in pdf._pool._processes), flush=True)\n"
        "    time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(root)})
    try:
        renderers = [int(pid) for pid in worker.stdout.readline().split()]
        assert len(renderers) == 2 and all(Path(f"/proc/{pid}").exists() for pid in renderers)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    def alive():
        # A zombie (reaped by init a moment later) has left already.
        return [pid for pid in renderers if Path(f"/proc/{pid}").exists()
                and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]

    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive()
