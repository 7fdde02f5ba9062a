"""A folder of this user's alone in the temp folder, for the Unix sockets and lock files other users must not
reach (the flow-run preloader's sockets, the rate limit's turn files). Standard library only: a flow run's
process imports it before anything else."""

from __future__ import annotations

import os
import stat
import tempfile


def private_temp_folder(name: str) -> str | None:
    """``<temp folder>/<name>-<uid>``, made with mode 0700 when missing; ``None`` when it cannot be made or is not
    this user's alone (not a folder, a symlink, another owner, or group or other access): nothing is kept where
    another user could write."""
    folder = os.path.join(tempfile.gettempdir(), f"{name}-{os.getuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder
