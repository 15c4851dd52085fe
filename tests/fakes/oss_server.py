"""A fake of Alibaba Cloud OSS's HTTP API, enough for oss2 to upload, list, download and delete.

Speaks: path-style requests (oss2 uses them for an IP endpoint: /<bucket>/<key>), ListObjects (v1: prefix,
marker, max-keys, delimiter, encoding-type=url, NextMarker paging) with OSS's un-namespaced XML, PutObject /
GetObject / HeadObject / DeleteObject, x-oss-meta-* and x-oss-storage-class headers, upper-case MD5 ETags,
x-oss-hash-crc64ecma (oss2 checks it after uploads and downloads), multipart upload (initiate, upload part,
complete with the part list, abort; parts below 100 KiB refused as OSS does), CopyObject within the bucket
(x-oss-copy-source, metadata kept unless x-oss-metadata-directive is REPLACE), and OSS error XML (NoSuchBucket,
NoSuchKey, InvalidAccessKeyId; errors of HEAD requests also in the base64 x-oss-err header).

Does not cover: signature verification (only the AccessKeyId in the Authorization header is checked), virtual
-hosted bucket addressing, ListObjectsV2, versioning, ACLs, Range and conditional GETs, copies between buckets,
append and
symlink objects, storage-class transitions or restore, server-side encryption, and throttling.
"""

from __future__ import annotations

import base64
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote
from xml.sax.saxutils import escape

import crcmod

from .object_store import ObjectStoreFake, ServiceError, StoredObject, iso_date

_AKID = re.compile(r"^OSS (?P<v1>[^:]+):|AccessKeyId:(?P<v2>[^,]+)|Credential=(?P<v4>[^/,]+)/")


def crc64(data: bytes) -> int:
    crc = crcmod.Crc(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
    crc.update(data)
    return crc.crcValue


class OSSFake(ObjectStoreFake):
    min_part_size = 100 * 1024
    meta_prefix = "x-oss-meta-"
    storage_header = "x-oss-storage-class"
    copy_source_header = "x-oss-copy-source"

    def locate(self, handler: BaseHTTPRequestHandler, path: str) -> tuple[str, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def caller_key_id(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> str | None:
        found = _AKID.search(handler.headers.get("Authorization", ""))
        if found:
            return found.group("v1") or found.group("v2") or found.group("v4")
        return query.get("OSSAccessKeyId")

    def etag_of(self, data: bytes) -> str:
        return super().etag_of(data).upper()

    def multipart_etag(self, parts: list[bytes]) -> str:
        return super().multipart_etag(parts).upper()

    def common_headers(self) -> list[tuple[str, str]]:
        return [("Server", "AliyunOSS"), ("x-oss-request-id", "5C0000000000000000000000")]

    def extra_object_headers(self, obj: StoredObject) -> list[tuple[str, str]]:
        return [
            ("x-oss-hash-crc64ecma", str(crc64(obj.data))),
            ("x-oss-object-type", "Multipart" if obj.multipart else "Normal"),
            ("x-oss-storage-class", obj.storage_class or "Standard"),
        ]

    def error_body(self, error: ServiceError, bucket: str, key: str) -> bytes:
        extra = f"<BucketName>{escape(bucket)}</BucketName>" if error.code == "NoSuchBucket" else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{error.code}</Code><Message>{escape(error.message)}</Message>"
            f"<RequestId>5C0000000000000000000000</RequestId><HostId>{escape(bucket)}.oss.local</HostId>{extra}"
            "</Error>"
        ).encode()

    def error_headers(self, error: ServiceError, body: bytes) -> list[tuple[str, str]]:
        return [("x-oss-err", base64.b64encode(body).decode()), ("x-oss-ec", "0000-00000000")]

    def list_body(self, bucket: str, query: dict[str, str]) -> bytes:
        prefix, marker = query.get("prefix", ""), query.get("marker", "")
        delimiter = query.get("delimiter", "")
        max_keys = min(int(query.get("max-keys") or 100), 1000)
        url = query.get("encoding-type") == "url"
        contents, prefixes, truncated, next_marker = self.store.list(bucket, prefix, marker, max_keys, delimiter)

        def enc(text: str) -> str:
            return quote(text, safe="") if url else escape(text)

        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
            f"<Name>{escape(bucket)}</Name><Prefix>{enc(prefix)}</Prefix><Marker>{enc(marker)}</Marker>",
            f"<MaxKeys>{max_keys}</MaxKeys><Delimiter>{enc(delimiter)}</Delimiter>",
            "<EncodingType>url</EncodingType>" if url else "",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
            f"<NextMarker>{enc(next_marker)}</NextMarker>" if truncated else "",
        ]
        for key, obj in contents:
            out.append(
                f"<Contents><Key>{enc(key)}</Key><LastModified>{iso_date(obj.modified)}</LastModified>"
                f'<ETag>"{obj.etag}"</ETag><Type>{"Multipart" if obj.multipart else "Normal"}</Type>'
                f"<Size>{len(obj.data)}</Size><StorageClass>{obj.storage_class or 'Standard'}</StorageClass>"
                "<Owner><ID>1000</ID><DisplayName>1000</DisplayName></Owner></Contents>"
            )
        out.extend(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        out.append("</ListBucketResult>")
        return "".join(out).encode()

    def object_location(self, bucket: str, key: str) -> str:
        return f"http://{self.address}/{escape(bucket)}/{escape(key)}"
