"""The one place a provider is opened: from a saved connection, or from a wizard's options before saving.

The sync pass, the running engine, encryption, the CLI and the TUI all come here, so whatever a provider is
handed besides its options (its token store, its pacer) is handed the same way everywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine.errors import UsageError
from engine.names import shown
from engine.providers import UnknownProvider, provider_class

if TYPE_CHECKING:
    from engine.config import Home, Task
    from engine.providers.base import Provider


def provider_kind(kind: str) -> type[Provider]:
    """The class of provider `kind`; an unknown kind is a UsageError (one line)."""
    try:
        return provider_class(kind)
    except UnknownProvider as exc:
        raise UsageError(str(exc)) from None


def open_provider(home: Home, connection: str, task: Task | None = None) -> Provider:
    """The saved connection's provider; for an encrypted task, wrapped so files are encrypted on the way up
    and decrypted (and verified) on the way down."""
    conn = home.connection(connection)
    provider = provider_kind(conn.provider)(home.all_options(connection))
    if _signs_in(provider):
        from engine.auth.tokens import TokenStore

        provider.attach_tokens(TokenStore(home.path, connection))
    # The direction is checked again here, not only when the task is saved: a hand-edited config.toml must
    # never make a two-way task list exported files it would then upload as new files.
    exporting = task is not None and task.convert_google_docs and task.direction == "download"
    if exporting and provider.capabilities.document_export:
        provider.export_documents()
    if task is not None and task.encrypt:
        from engine.crypto.provider import EncryptedProvider

        return EncryptedProvider(provider, home.secrets(connection))
    return provider


def _signs_in(provider: Provider) -> bool:
    """Whether the provider is an OAuth one (it gets a token store). Asked without importing the OAuth layer
    (urllib.request, ssl, email: ~20 ms of a one-shot pass's start-up): an OAuth provider's module has imported
    it already, so while it is absent no provider can be one."""
    oauth = sys.modules.get("engine.providers.oauth")
    return oauth is not None and isinstance(provider, oauth.OAuthProvider)


def open_unsaved(kind: str, options: Mapping[str, str]) -> Provider:
    """A provider for options not saved yet (the wizard's connection test); the options are validated first."""
    cls = provider_kind(kind)
    cls.validate_options(options)
    return cls(options)


def cloud_overlap(home: Home, task: Task) -> str | None:
    """Why the task's local folder and its cloud folder cannot be paired -- one holds the other, where the
    connection's storage is a folder of this machine pointed at or into the task's own folder -- or None."""
    conn = home.connection(task.connection)
    cloud = provider_kind(conn.provider).folder_here(home.all_options(conn.name), task.remote)
    if cloud is None:
        return None
    local = os.path.realpath(task.local)
    if os.path.commonpath([local, cloud]) in (local, cloud):
        return (f"the local folder {shown(local)} and the cloud folder {shown(cloud)} of task '{task.name}' overlap: "
                "every pass would copy the tree into itself; choose folders apart")
    return None
