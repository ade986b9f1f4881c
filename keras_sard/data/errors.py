"""Errors about one dataset file or folder, and finding them again inside
the errors tf.data raises.

A reader that meets a file it cannot use raises a `DataError`: the file
(``path``) and what is wrong with it (``problem``), printed as
``path: problem``.  `MissingDataError` (also a ``FileNotFoundError``) is for
what is not there (a folder, a mask), `BadDataError` (also a ``ValueError``)
for what is there but unusable (a corrupt image, a mask of another size).

Inside a ``tf.data`` map the Python error becomes a TensorFlow error whose
long message holds the original one; `data_error_message` finds it, so the
command line can say in one line which file is wrong.

>>> error = BadDataError("data/images/a.png", "cannot be decoded as an image")
>>> str(error), isinstance(error, ValueError)
('data/images/a.png: cannot be decoded as an image', True)
>>> data_error_message(RuntimeError("... BadDataError: b.png: is 4x5 (HxW) ...\\nTraceback"))
'b.png: is 4x5 (HxW) ...'
"""

import os
import re

__all__ = ["BadDataError", "DataError", "MissingDataError", "data_error_message"]


class DataError(Exception):
    """A dataset file or folder that cannot be used.

    Attributes:
        path: the file or folder.
        problem: what is wrong with it, one line.
    """

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())  # one line
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):  # copy and pickle with both arguments
        return type(self), (self.path, self.problem)


class BadDataError(DataError, ValueError):
    """A file that is there but cannot be used (unreadable, wrong size, unknown labels)."""


class MissingDataError(DataError, FileNotFoundError):
    """A file or folder that is not there (an empty folder, an image without its mask)."""


_IN_MESSAGE = re.compile(r"\b(?:BadDataError|MissingDataError): (.+)")


def data_error_message(error):
    """``"path: problem"`` when `error` is, was caused by, or (a TensorFlow
    error from a tf.data map) carries in its message a `DataError`; else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DataError):
            return str(error)
        match = _IN_MESSAGE.search(str(error))
        if match:
            return match.group(1).strip()
        error = error.__cause__ or error.__context__
    return None
