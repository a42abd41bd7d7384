"""HTML to PDF with WeasyPrint: in this process, or in a pool of processes of its own (the worker).

WeasyPrint's layout is pure Python and holds the GIL nearly throughout. Rendered in the worker's own
process, every report's PDF takes its turn on one core while the workflow tasks, the other activities and
their heartbeats wait for the GIL: at the end of a cycle twenty reports' PDFs queued behind one another.
`start_pool(n)` (the worker calls it) gives the rendering n processes of its own, spawned so that no child
inherits the worker's threads, each loading WeasyPrint and its fonts once and leaving when the worker is
gone. Without a pool (the web, tests, commands) a rendering runs here, one at a time per process.

This module imports nothing of Django: the pool's processes import it, WeasyPrint and synapse.heap only.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

logger = logging.getLogger(__name__)

_fonts = None
_fonts_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


class RenderingFailed(RuntimeError):
    """The rendering process died (killed, out of memory): the pool is started again; try again."""


def render_here(html: str) -> bytes:
    """The PDF of `html`, rendered in this process (one rendering at a time: the fonts are shared)."""
    global _fonts
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    # Made afresh, the font configuration is a third of a small report's rendering: one per process.
    # It is not safe to share between threads rendering at once.
    with _fonts_lock:
        if _fonts is None:
            _fonts = FontConfiguration()
        return HTML(string=html).write_pdf(font_config=_fonts)


# Where the page's footer goes in replace_last_page's html: "page n of n", n the document's page count.
LAST_PAGE_LABEL = "@@last-page-label@@"


def replace_last_page_here(document: bytes, html: str) -> bytes | None:
    """`document` with its last page replaced by the one page `html` renders to (None if it isn't one page).

    The pages before it are `document`'s own objects, copied as they are (pypdf).
    """
    import io

    from pypdf import PdfReader, PdfWriter

    original = PdfReader(io.BytesIO(document))
    count = len(original.pages)
    page = PdfReader(io.BytesIO(render_here(html.replace(LAST_PAGE_LABEL, f"page {count} of {count}"))))
    if len(page.pages) != 1:
        return None
    writer = PdfWriter()
    for kept in original.pages[:-1]:
        writer.add_page(kept)
    writer.add_page(page.pages[0])
    if original.metadata:
        writer.add_metadata(dict(original.metadata))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


ORPHAN_CHECK_SECONDS = 1.0


def _exit_with(parent: int) -> None:
    """Leave as soon as `parent` (the worker) is gone: killed, its rendering processes would live on."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)


def _warm(parent: int) -> None:
    """Run in each new process of the pool: follow the worker out; load WeasyPrint and its fonts now."""
    threading.Thread(target=_exit_with, args=(parent,), name="orphan-check", daemon=True).start()
    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # a line per step of every rendering otherwise
    render_here("<p>warm</p>")
    from synapse.heap import settle

    settle()  # a rendering makes hundreds of thousands of short-lived boxes: collect them seldom


def start_pool(processes: int) -> None:
    """Render in `processes` processes of their own from now on (0: in this process); returns once they run."""
    global _pool_size
    with _pool_lock:
        _stop_locked()
        _pool_size = processes
        _start_locked(processes)


def stop_pool() -> None:
    global _pool_size
    with _pool_lock:
        _stop_locked()
        _pool_size = 0


def _stop_locked() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def pool_size() -> int:
    return _pool_size


def render(html: str) -> bytes:
    """The PDF of `html`: in the pool when one is started, else here."""
    return _run(render_here, html)


def replace_last_page(document: bytes, html: str) -> bytes | None:
    """replace_last_page_here, in the pool when one is started."""
    return _run(replace_last_page_here, document, html)


def _run(fn, *args):
    pool = _pool
    if pool is None:
        return fn(*args)
    try:
        return pool.submit(fn, *args).result()
    except BrokenProcessPool as err:
        # A rendering process died; its pool takes no more work. The next rendering gets a new pool.
        with _pool_lock:
            if _pool is pool:
                logger.warning("a PDF rendering process died; starting the pool again")
                _stop_locked()
                _start_locked(_pool_size)
        raise RenderingFailed("The PDF rendering process stopped unexpectedly; the rendering is tried again.") \
            from err


def _start_locked(processes: int) -> None:
    global _pool
    if processes > 0:
        import os

        # Spawned, not forked: no child inherits the worker's threads (Temporal's, the activities'). Not from
        # a fork server either: a worker killed with SIGKILL left the server and its processes running.
        _pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_warm, initargs=(os.getpid(),))
        # Start (and warm) them now, with the worker, rather than in the first report's activity.
        started = [_pool.submit(int) for _ in range(processes)]
        try:
            for future in started:
                future.result(timeout=120)
        except Exception:  # noqa: BLE001 - a rendering will start them again, and say what fails
            logger.warning("the PDF rendering processes did not start; renderings will try again", exc_info=True)
