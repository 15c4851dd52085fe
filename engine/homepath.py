"""Where the skysync home is: --home, else $SKYSYNC_HOME, else the user's config folder. Apart from the
configuration module so that a command can find its home before pydantic is loaded (engine.prewalk)."""

from __future__ import annotations

import os


def default_home() -> str:
    import platformdirs

    return platformdirs.user_config_dir("skysync")


def resolve_home(explicit: str | None) -> str:
    home = explicit or os.environ.get("SKYSYNC_HOME") or default_home()
    return os.path.abspath(os.path.expanduser(home))
