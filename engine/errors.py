"""Errors the command line turns into one line on stderr and an exit code."""


class SkysyncError(Exception):
    exit_code = 2


class UsageError(SkysyncError):
    """Bad usage or configuration: exit 2, nothing changed."""


class GuardError(SkysyncError):
    """A safety guard stopped the pass before anything changed: exit 2."""


class LockedError(SkysyncError):
    """Another pass of the same task (or another engine on the same home) is running: exit 2."""


class ConnectionFailed(GuardError):
    """The service failed before the pass could start (credentials, missing bucket, network): exit 2.

    `cause` keeps the provider's error so a long-running engine can tell refused credentials from an outage.
    """

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.cause = cause
