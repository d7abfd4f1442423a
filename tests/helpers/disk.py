"""A disk that fills up: stands in for a module's ``os`` in the full-disk tests."""

from __future__ import annotations

import errno
import os


class DiskFillsUp:
    """``os`` for one module, with a disk that is full after ``room`` more bytes are written."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(fd, bytes(data[:self.room]))
        self.room -= written
        return written
