"""The shared core of the object-store protocol fakes: an in-memory store and a threaded HTTP server.

A service module (oss_server, cos_server) subclasses `ObjectStoreFake` and decides the wire details: where the
bucket name comes from, which headers carry metadata, how ETags, dates and errors look. The store keeps whole
objects in memory, which is all a test needs. Content-MD5, when a request sends it, is verified as the services
do.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from tests.fakes.httpserver import QuietServer


@dataclass
class StoredObject:
    data: bytes
    etag: str  # without quotes, as the service spells it
    modified: float
    meta: dict[str, str]  # lower-case header name -> value, e.g. {"x-oss-meta-mtime": "1600000000"}
    storage_class: str
    multipart: bool = False


@dataclass
class Upload:
    bucket: str
    key: str
    meta: dict[str, str]
    storage_class: str
    parts: dict[int, bytes] = field(default_factory=dict)
    initiated: float = field(default_factory=time.time)


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, dict[str, StoredObject]] = {}
        self.uploads: dict[str, Upload] = {}

    def bucket(self, name: str) -> dict[str, StoredObject]:
        found = self.buckets.get(name)
        if found is None:
            raise ServiceError(404, "NoSuchBucket", "The specified bucket does not exist.")
        return found

    def list(
        self, bucket: str, prefix: str, marker: str, max_keys: int, delimiter: str
    ) -> tuple[list[tuple[str, StoredObject]], list[str], bool, str]:
        """(objects, common prefixes, truncated, next marker) in UTF-8 byte order, as S3-like services list."""
        with self.lock:
            objects = self.bucket(bucket)
            keys = sorted((k for k in objects if k.startswith(prefix) and k > marker), key=lambda k: k.encode())
            contents: list[tuple[str, StoredObject]] = []
            prefixes: list[str] = []
            last = ""
            for key in keys:
                if len(contents) + len(prefixes) >= max_keys:
                    return contents, prefixes, True, last
                if delimiter and delimiter in key[len(prefix) :]:
                    common = key[: key.index(delimiter, len(prefix)) + len(delimiter)]
                    if not prefixes or prefixes[-1] != common:
                        prefixes.append(common)
                    last = key
                    continue
                contents.append((key, objects[key]))
                last = key
            return contents, prefixes, False, ""


class ObjectStoreFake:
    """A threaded HTTP server on 127.0.0.1 (port 0) with one in-memory store; subclasses speak the protocol."""

    min_part_size = 1 << 20
    meta_prefix = "x-amz-meta-"
    storage_header = "x-amz-storage-class"
    copy_source_header = "x-amz-copy-source"

    def __init__(self, access_key_id: str) -> None:
        self.access_key_id = access_key_id
        self.store = Store()
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                fake.requests += 1
                fake.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def create_bucket(self, name: str) -> None:
        with self.store.lock:
            self.store.buckets.setdefault(name, {})

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object directly, as another client of the service would have."""
        with self.store.lock:
            self.store.bucket(bucket)[key] = StoredObject(data, self.etag_of(data), time.time(), {}, "")

    # -- what subclasses decide ----------------------------------------------------------------------------

    def locate(self, handler: BaseHTTPRequestHandler, path: str) -> tuple[str, str]:
        """(bucket, key) of a request; key "" for bucket operations."""
        raise NotImplementedError

    def caller_key_id(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> str | None:
        raise NotImplementedError

    def etag_of(self, data: bytes) -> str:
        return hashlib.md5(data).hexdigest()

    def multipart_etag(self, parts: list[bytes]) -> str:
        digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
        return f"{digest}-{len(parts)}"

    def extra_object_headers(self, obj: StoredObject) -> list[tuple[str, str]]:
        return []

    def common_headers(self) -> list[tuple[str, str]]:
        return []

    def error_body(self, error: ServiceError, bucket: str, key: str) -> bytes:
        raise NotImplementedError

    def error_headers(self, error: ServiceError, body: bytes) -> list[tuple[str, str]]:
        return []

    def list_body(self, bucket: str, query: dict[str, str]) -> bytes:
        raise NotImplementedError

    def init_upload_body(self, bucket: str, key: str, upload_id: str) -> bytes:
        """InitiateMultipartUpload, the same XML at both services."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult>'
            f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>"
            "</InitiateMultipartUploadResult>"
        ).encode()

    def uploads_body(self, bucket: str, query: dict[str, str]) -> bytes:
        """ListMultipartUploads, the same XML at both services (all in one page: tests start only a few)."""
        prefix = query.get("prefix", "")
        url = query.get("encoding-type") == "url"
        with self.store.lock:
            self.store.bucket(bucket)
            found = sorted(
                ((u.key, upload_id, u) for upload_id, u in self.store.uploads.items() if u.bucket == bucket),
                key=lambda t: (t[0].encode(), t[1]),
            )

        def enc(text: str) -> str:
            return quote(text, safe="") if url else escape(text)

        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>',
            f"<Bucket>{escape(bucket)}</Bucket>",
            "<EncodingType>url</EncodingType>" if url else "",
            f"<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker></NextKeyMarker>"
            f"<NextUploadIdMarker></NextUploadIdMarker><Prefix>{enc(prefix)}</Prefix>"
            "<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>",
        ]
        for key, upload_id, upload in found:
            if key.startswith(prefix):
                out.append(
                    f"<Upload><Key>{enc(key)}</Key><UploadId>{upload_id}</UploadId>"
                    f"<StorageClass>{upload.storage_class}</StorageClass>"
                    f"<Initiated>{iso_date(upload.initiated)}</Initiated></Upload>"
                )
        out.append("</ListMultipartUploadsResult>")
        return "".join(out).encode()

    def object_location(self, bucket: str, key: str) -> str:
        raise NotImplementedError

    def complete_body(self, bucket: str, key: str, etag: str) -> bytes:
        """CompleteMultipartUpload's answer: the same XML at both services, but for where the object is."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult>'
            f"<Location>{self.object_location(bucket, key)}</Location>"
            f'<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key><ETag>"{etag}"</ETag>'
            "</CompleteMultipartUploadResult>"
        ).encode()

    def parse_complete(self, body: bytes) -> list[tuple[int, str]]:
        root = ElementTree.fromstring(body)
        return [(int(p.findtext("PartNumber", "0")), p.findtext("ETag", "")) for p in root.iter("Part")]

    # -- the HTTP side -------------------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body = _read_body(h)
        bucket, key = "", ""
        try:
            bucket, key = self.locate(h, unquote(split.path))
            if self.caller_key_id(h, query) != self.access_key_id:
                raise ServiceError(403, "InvalidAccessKeyId", "The Access Key Id you provided does not exist.")
            status, headers, payload = self.dispatch(h.command, bucket, key, query, h, body)
        except ServiceError as error:
            payload = self.error_body(error, bucket, key)
            status, headers = error.status, [("Content-Type", "application/xml"), *self.error_headers(error, payload)]
        self.reply(h, status, headers, payload)

    def reply(self, h: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        h.send_response(status)
        for name, value in [*self.common_headers(), *headers]:
            h.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in headers):
            h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(payload)

    def dispatch(
        self, method: str, bucket: str, key: str, query: dict[str, str], h: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        store = self.store
        if not key:
            if method == "GET" and "uploads" in query:
                return 200, [("Content-Type", "application/xml")], self.uploads_body(bucket, query)
            if method == "GET":
                return 200, [("Content-Type", "application/xml")], self.list_body(bucket, query)
            if method == "HEAD":
                with store.lock:
                    store.bucket(bucket)
                return 200, [], b""
            raise ServiceError(405, "MethodNotAllowed", "The specified method is not allowed.")
        sent_md5 = h.headers.get("Content-MD5")
        if sent_md5 and method == "PUT" and base64.b64encode(hashlib.md5(body).digest()).decode() != sent_md5:
            raise ServiceError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        meta = {k.lower(): v for k, v in h.headers.items() if k.lower().startswith(self.meta_prefix)}
        storage = h.headers.get(self.storage_header, "") or "STANDARD"
        if method == "POST" and "uploads" in query:
            upload_id = uuid.uuid4().hex.upper()
            with store.lock:
                store.bucket(bucket)
                store.uploads[upload_id] = Upload(bucket, key, meta, storage)
            return 200, [("Content-Type", "application/xml")], self.init_upload_body(bucket, key, upload_id)
        if "uploadId" in query:
            return self.multipart(method, bucket, key, query, body)
        source = h.headers.get(self.copy_source_header)
        if method == "PUT" and source:
            return self.copy(bucket, key, source, meta, storage, h)
        if method == "PUT":
            obj = StoredObject(body, self.etag_of(body), time.time(), meta, storage)
            with store.lock:
                store.bucket(bucket)[key] = obj
            return 200, [("ETag", f'"{obj.etag}"'), *self.extra_object_headers(obj)], b""
        if method in ("GET", "HEAD"):
            with store.lock:
                obj_or_none = store.bucket(bucket).get(key)
            if obj_or_none is None:
                raise ServiceError(404, "NoSuchKey", "The specified key does not exist.")
            obj = obj_or_none
            headers = [
                ("ETag", f'"{obj.etag}"'),
                ("Last-Modified", _http_date(obj.modified)),
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(obj.data))),
                *obj.meta.items(),
                *self.extra_object_headers(obj),
            ]
            return 200, headers, obj.data
        if method == "DELETE":
            with store.lock:
                store.bucket(bucket).pop(key, None)
            return 204, [], b""
        raise ServiceError(405, "MethodNotAllowed", "The specified method is not allowed.")

    def copy(
        self, bucket: str, key: str, source: str, meta: dict[str, str], storage: str, h: BaseHTTPRequestHandler
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """PUT with a copy-source header: a server-side copy within the bucket ("/bucket/key" for OSS,
        "bucket.endpoint/key" for COS: the key follows the first slash after the bucket). The metadata travels
        with the copy unless the request's metadata directive says REPLACE."""
        source_key = unquote(source.lstrip("/").partition("/")[2].partition("?")[0])
        directive = next((v for k, v in h.headers.items() if k.lower().endswith("-metadata-directive")), "COPY")
        with self.store.lock:
            objects = self.store.bucket(bucket)
            found = objects.get(source_key)
            if found is None:
                raise ServiceError(404, "NoSuchKey", "The specified key does not exist.")
            kept = meta if directive.upper() in ("REPLACE", "REPLACED") else dict(found.meta)
            obj = StoredObject(found.data, found.etag, time.time(), kept, storage, found.multipart)
            objects[key] = obj
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><ETag>"{obj.etag}"</ETag>'
               f"<LastModified>{iso_date(obj.modified)}</LastModified></CopyObjectResult>").encode()
        return 200, [("Content-Type", "application/xml"), ("ETag", f'"{obj.etag}"'),
                     *self.extra_object_headers(obj)], xml

    def multipart(
        self, method: str, bucket: str, key: str, query: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        store = self.store
        upload_id = query["uploadId"]
        with store.lock:
            store.bucket(bucket)
            upload = store.uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise ServiceError(404, "NoSuchUpload", "The specified upload does not exist.")
        if method == "PUT":
            number = int(query["partNumber"])
            upload.parts[number] = body
            part = StoredObject(body, self.etag_of(body), time.time(), {}, "")
            return 200, [("ETag", f'"{part.etag}"'), *self.extra_object_headers(part)], b""
        if method == "DELETE":
            with store.lock:
                store.uploads.pop(upload_id, None)
            return 204, [], b""
        if method == "POST":
            listed = self.parse_complete(body)
            parts: list[bytes] = []
            for number, etag in listed:
                data = upload.parts.get(number)
                if data is None or self.etag_of(data) != etag.strip('"'):
                    raise ServiceError(400, "InvalidPart", "One or more of the specified parts could not be found.")
                parts.append(data)
            if any(len(p) < self.min_part_size for p in parts[:-1]):
                raise ServiceError(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum.")
            data = b"".join(parts)
            obj = StoredObject(data, self.multipart_etag(parts), time.time(), upload.meta, upload.storage_class, True)
            with store.lock:
                store.bucket(bucket)[key] = obj
                store.uploads.pop(upload_id, None)
            return (
                200,
                [("Content-Type", "application/xml"), ("ETag", f'"{obj.etag}"'), *self.extra_object_headers(obj)],
                self.complete_body(bucket, key, obj.etag),
            )
        raise ServiceError(405, "MethodNotAllowed", "The specified method is not allowed.")


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():  # SDKs stream bodies of unknown length
        chunks: list[bytes] = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _http_date(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ts))


def iso_date(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))
