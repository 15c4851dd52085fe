"""A fake of Tencent Cloud COS V5's XML API, enough for cos-python-sdk-v5 to upload, list, download and delete.

Speaks: requests sent to an IP and port with the bucket in the Host header ("<bucket>.cos.<region>.myqcloud.com",
which is what the SDK does when it is given IP and Port), GET Bucket (prefix, marker, max-keys, delimiter,
encoding-type=url, NextMarker paging), PUT / GET / HEAD / DELETE Object, x-cos-meta-* and x-cos-storage-class
headers, lower-case MD5 ETags, x-cos-hash-crc64ecma, multipart upload (initiate, upload part, complete with the
part list, abort; parts below 1 MiB refused as COS does), PUT Object - Copy within the bucket (x-cos-copy-source,
metadata kept unless x-cos-metadata-directive is Replaced) and COS error XML (NoSuchBucket, NoSuchKey,
InvalidAccessKeyId).

Does not cover: signature verification (only the q-ak field of the Authorization header is checked), path-style
or custom-domain addressing, ListObjectVersions, ACLs, Range and conditional GETs, copies between buckets,
append, archive restore, server-side encryption, and throttling.
"""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote
from xml.sax.saxutils import escape

import crcmod

from .object_store import ObjectStoreFake, ServiceError, StoredObject, iso_date

_AKID = re.compile(r"(?:^|&)q-ak=([^&]+)")


def crc64(data: bytes) -> int:
    crc = crcmod.Crc(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
    crc.update(data)
    return crc.crcValue


class COSFake(ObjectStoreFake):
    min_part_size = 1 << 20
    meta_prefix = "x-cos-meta-"
    storage_header = "x-cos-storage-class"
    copy_source_header = "x-cos-copy-source"

    def locate(self, handler: BaseHTTPRequestHandler, path: str) -> tuple[str, str]:
        host = handler.headers.get("Host", "")
        if ".cos." not in host:
            raise ServiceError(400, "InvalidURI", "Could not parse the specified URI.")
        return host.split(".", 1)[0], path.lstrip("/")

    def caller_key_id(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> str | None:
        found = _AKID.search(handler.headers.get("Authorization", ""))
        return found.group(1) if found else query.get("q-ak")

    def common_headers(self) -> list[tuple[str, str]]:
        return [("Server", "tencent-cos"), ("x-cos-request-id", "NjAwMDAwMDBfMDAwMDAwMDA=")]

    def extra_object_headers(self, obj: StoredObject) -> list[tuple[str, str]]:
        return [
            ("x-cos-hash-crc64ecma", str(crc64(obj.data))),
            ("x-cos-storage-class", obj.storage_class or "STANDARD"),
        ]

    def error_body(self, error: ServiceError, bucket: str, key: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{error.code}</Code><Message>{escape(error.message)}</Message>"
            f"<Resource>{escape(bucket)}.cos.local/{escape(key)}</Resource>"
            "<RequestId>NjAwMDAwMDBfMDAwMDAwMDA=</RequestId><TraceId>OGVmYzZiMmQzYjA2OWNh</TraceId></Error>"
        ).encode()

    def list_body(self, bucket: str, query: dict[str, str]) -> bytes:
        prefix, marker = query.get("prefix", ""), query.get("marker", "")
        delimiter = query.get("delimiter", "")
        max_keys = min(int(query.get("max-keys") or 1000), 1000)
        url = query.get("encoding-type") == "url"
        contents, prefixes, truncated, next_marker = self.store.list(bucket, prefix, marker, max_keys, delimiter)

        def enc(text: str) -> str:
            return quote(text, safe="") if url else escape(text)

        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
            f"<Name>{escape(bucket)}</Name>",
            "<EncodingType>url</EncodingType>" if url else "",
            f"<Prefix>{enc(prefix)}</Prefix><Marker>{enc(marker)}</Marker><MaxKeys>{max_keys}</MaxKeys>",
            f"<Delimiter>{enc(delimiter)}</Delimiter>" if delimiter else "",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
            f"<NextMarker>{enc(next_marker)}</NextMarker>" if truncated else "",
        ]
        for key, obj in contents:
            out.append(
                f"<Contents><Key>{enc(key)}</Key><LastModified>{iso_date(obj.modified)}</LastModified>"
                f'<ETag>"{obj.etag}"</ETag><Size>{len(obj.data)}</Size>'
                "<Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>"
                f"<StorageClass>{obj.storage_class or 'STANDARD'}</StorageClass></Contents>"
            )
        out.extend(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        out.append("</ListBucketResult>")
        return "".join(out).encode()

    def object_location(self, bucket: str, key: str) -> str:
        return f"{escape(bucket)}.cos.local/{escape(key)}"
