"""Errors the command line turns into one line on stderr and an exit code."""


class SkysyncError(Exception):
    exit_code = 2


class UsageError(SkysyncError):
    """Bad usage or configuration: exit 2, nothing changed."""


class GuardError(SkysyncError):
    """A safety guard stopped the pass before anything changed: exit 2."""


class LockedError(SkysyncError):
    """Another pass of the same task (or another engine on the same home) is running: exit 2."""
