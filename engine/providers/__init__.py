"""The provider registry: kind name -> implementing class, imported only when a kind is used.

Cloud SDKs are slow to import, so the table names modules instead of importing them; `skysync --help` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.providers.base import Provider

_REGISTRY: dict[str, str] = {
    "local": "engine.providers.local:LocalProvider",
    "s3": "engine.providers.s3:S3Provider",
    "jdcloud": "engine.providers.s3:JDCloudProvider",
    "oss": "engine.providers.oss:OSSProvider",
    "cos": "engine.providers.cos:COSProvider",
    "b2": "engine.providers.b2:B2Provider",
    "azure": "engine.providers.azure:AzureProvider",
    "gcs": "engine.providers.gcs:GCSProvider",
    "swift": "engine.providers.swift:SwiftProvider",
    "webdav": "engine.providers.webdav:WebDAVProvider",
    "dropbox": "engine.providers.dropbox:DropboxProvider",
    "gdrive": "engine.providers.gdrive:GDriveProvider",
    "yandex": "engine.providers.yandex:YandexProvider",
    "box": "engine.providers.box:BoxProvider",
    "onedrive": "engine.providers.onedrive:OneDriveProvider",
    "onedrive-business": "engine.providers.onedrive:OneDriveBusinessProvider",
    "sharepoint": "engine.providers.onedrive:SharePointProvider",
    "baidu": "engine.providers.baidu:BaiduProvider",
}


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider '{self.args[0]}' (known: {', '.join(kinds())})"


def kinds() -> list[str]:
    """The provider kinds that are built in this installation."""
    return [k for k, target in _REGISTRY.items() if importlib.util.find_spec(target.split(":")[0]) is not None]


def provider_class(kind: str) -> type[Provider]:
    target = _REGISTRY.get(kind)
    module_name, _, class_name = (target or "").partition(":")
    # Only this kind's module is looked for (kinds() looks for all eighteen, on every provider opened).
    if target is None or importlib.util.find_spec(module_name) is None:
        raise UnknownProvider(kind)
    return getattr(importlib.import_module(module_name), class_name)
