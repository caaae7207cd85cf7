"""Errors, each carrying the exit code the docker CLI would use.

docker's CLI exit codes (docker/cli, moby's errdefs):
    1    a command failed (No such container, illegal state change, ...)
    125  `docker run`/`create` itself failed (bad flag, image missing, runtime error)
    126  the container command could not be invoked (permission denied, a directory)
    127  the container command was not found
Every error message is one line: the CLI prints it and exits, never a traceback.
"""
from __future__ import annotations


class MinidockerError(Exception):
    """Base class. `exit_code` is what the CLI exits with (run/create map 1 to 125)."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotFound(MinidockerError):
    """No such container / image / network."""


class Conflict(MinidockerError):
    """Name in use, container running when it must not be, ..."""


class InvalidState(MinidockerError):
    """An illegal lifecycle transition (e.g. pause a stopped container)."""


class InvalidArgument(MinidockerError):
    """Bad user input: flag values, references, env files."""

    exit_code = 125


class RuntimeFailure(MinidockerError):
    """The runtime failed while setting up the container (docker exits 125)."""

    exit_code = 125
