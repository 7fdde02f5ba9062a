"""The run's work folder: a fresh folder under the temporary directory, removed when the run ends.

A run keeps its local copies there (the upload file, the downloaded report, ``run.json`` before it is
written out). They may hold a full copy of the dataset and the participants' answers, so the folder
is removed at the end of the run, and after an expected refusal (bad input, over budget, publishing
rejected). After any other failure it is kept for inspection and its path is logged and added to the
exception as a note.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.logs import run_logger


@contextmanager
def work_folder(prefix: str, *, discard_on: tuple[type[BaseException], ...] = ()) -> Iterator[Path]:
    """Yield a new folder (``tempfile.mkdtemp(prefix=prefix)``); remove it when the block ends, or when
    it raises one of ``discard_on``; keep it when it raises anything else (the path logged as a warning
    and added to the exception with ``add_note``)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException as error:
        if isinstance(error, discard_on):
            shutil.rmtree(path, ignore_errors=True)
        else:
            note = f"The run's work folder is kept for inspection at {path} (remove it when done)."
            error.add_note(note)
            run_logger().warning(note)
        raise
    shutil.rmtree(path, ignore_errors=True)
