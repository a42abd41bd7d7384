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
