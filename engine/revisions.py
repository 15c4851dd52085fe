"""Which conflict mode a connection uses, and why (spec: "Default action for conflicted copy").

A file changed on both sides keeps its local version under its name. Where the cloud verifiably keeps the
version an upload replaces, the remote edit is "saved as one revision" there (`revision`): the local version is
uploaded over it, conditionally on the cloud still holding what the plan saw, and the log names the revision.
Everywhere else, and whenever keeping versions cannot be told for this bucket or account, the remote edit
becomes a conflict copy on both sides (`copy`). A connection's `conflict_mode` setting can ask for `copy`;
asking for `revision` never takes effect where it is not verified: nothing is lost on a guess.

The decision is pure (`decide`); `resolve` asks the provider, `for_connection` opens it (doctor, the app).
"""

from __future__ import annotations

from datetime import UTC, datetime

from engine.config import CONFLICT_DEFAULT, CONFLICT_MODES, Home
from engine.providers.base import Provider, ProviderError

REVISION, COPY = CONFLICT_MODES
DEFAULT = CONFLICT_DEFAULT  # the spec's behaviour, taken only where it is verified (see `decide`)


def decide(setting: str, keeps: str | None) -> tuple[str, str]:
    """(mode, reason) from the connection's setting and the provider's answer (None: versions are kept and
    verified; else why not)."""
    if setting == COPY:
        return COPY, "conflict_mode is copy for this connection: the cloud's version is kept as a conflict copy"
    if keeps is None:
        return REVISION, "the cloud keeps earlier versions: the cloud's version of a conflict stays as a revision"
    return COPY, f"{keeps}: the cloud's version of a conflict is kept as a conflict copy"


def resolve(provider: Provider, setting: str) -> tuple[str, str]:
    """`decide` with the provider asked (one call to the service, where it has to check a bucket setting). A
    check that fails is no verification: `copy`, with the reason."""
    if setting == COPY:
        return decide(setting, None)
    try:
        keeps = provider.keeps_revisions()
    except ProviderError as exc:
        keeps = f"whether the cloud keeps earlier versions could not be checked ({exc})"
    return decide(setting, keeps)


def for_connection(home: Home, name: str) -> tuple[str, str]:
    """(mode, reason) for connection `name` of a Home, for `skysync doctor` and the app's wizard. Opens the
    provider (its sign-in and token store as a pass would) and may call the service: run it off the UI thread."""
    from engine.connect import open_provider

    setting = home.connection(name).conflict_mode
    if setting == COPY:
        return decide(setting, None)
    provider = open_provider(home, name)
    try:
        return resolve(provider, setting)
    finally:
        provider.close()


def kept_message(version: str, when: float | None) -> str:
    """The conflict's log line in revision mode: it names the revision the cloud keeps (id and time)."""
    text = f"revision {version}" if version else "an earlier revision"
    if when is not None:
        text += f" of {datetime.fromtimestamp(when, UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"changed on both sides; kept the local version; the cloud's version is {text}"
