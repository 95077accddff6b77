"""A Flickr-compatible HTTP server on 127.0.0.1 for the crawl tests and benchmark.

It implements what the crawler relies on (Flickr API docs,
https://www.flickr.com/services/api/): `flickr.photos.search`
with the licence filter, upload-date windows, tags with `-` exclusion, pagination
that repeats pages past the 4,000-result cap, `total` as a string; and
`flickr.photos.getSizes`; and static image files. Faults are injected on demand:
a queue of one-shot faults per kind of request (API or static), and per-photo
faults that happen on every request for that photo's file.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from PIL import Image

SEARCH_LIMIT = 4000  # flickr.photos.search docs: at most the first 4,000 results of any query
# One-shot faults, injected with `server.faults["api" | "static"].append(kind)`.
FAULTS = ("429", "500", "503", "stall", "truncated", "badjson", "fail105", "reset")
# Per-photo faults (`server.bad_photos[id] = kind`): every fetch of that file is bad.
BAD_FILES = ("short", "corrupt", "wrongsize")


@dataclasses.dataclass
class Photo:
    """One photo the fake Flickr knows: search fields plus the served image's size."""

    id: str
    license: int
    dateupload: int
    width: int
    height: int
    owner: str = "12345@N00"
    ownername: str = "Some One"
    title: str = "a photo"
    tags: str = "portrait"
    original: bool = True  # whether url_o / Original size is visible

    def colour(self) -> tuple[int, int, int]:
        n = int(self.id)
        return (n * 37 % 256, n * 91 % 256, n * 53 % 256)


class FlickrServer:
    """The server and its knobs; use as a context manager."""

    def __init__(self, photos: list[Photo], api_key: str):
        self.photos = {p.id: p for p in photos}
        self.by_date = sorted(photos, key=lambda p: (p.dateupload, p.id))
        self.api_key = api_key
        self.faults: dict[str, collections.deque[str]] = {"api": collections.deque(), "static": collections.deque()}
        self.bad_photos: dict[str, str] = {}
        self.retry_after = "0"
        self.stall_s = 1.0
        self.image_delay_s = 0.0
        self.leaky_licence = False  # ignore the licence filter, as a buggy API might
        self.echo_key_error = False  # answer every call with an error quoting the key
        self.fail_after_calls: int | None = None  # then refuse every call, as if the key were revoked
        self.sizes_calls: collections.Counter[str] = collections.Counter()
        self.api_calls: collections.Counter[str] = collections.Counter()
        self.downloads: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._images: dict[tuple[str, int, int], bytes] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.endpoint = f"{self.base}/services/rest/"

    def __enter__(self) -> FlickrServer:
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_fault(self, kind: str) -> str | None:
        with self._lock:
            return self.faults[kind].popleft() if self.faults[kind] else None

    # --- API -----------------------------------------------------------------

    def api(self, params: dict[str, str]) -> dict[str, Any]:
        method = params.get("method", "")
        with self._lock:
            self.api_calls[method] += 1
        if self.fail_after_calls is not None and sum(self.api_calls.values()) > self.fail_after_calls:
            return _fail(100, "Invalid API Key (Key not found)")
        if self.echo_key_error:
            return _fail(116, f"Bad URL found: ?api_key={params.get('api_key')}&method={method}")
        if params.get("api_key") != self.api_key:
            return _fail(100, "Invalid API Key (Key has invalid format)")
        if method == "flickr.photos.search":
            return self.search(params)
        if method == "flickr.photos.getSizes":
            with self._lock:
                self.sizes_calls[params.get("photo_id", "")] += 1
            return self.sizes(params.get("photo_id", ""))
        return _fail(112, f'Method "{method}" not found')

    def search(self, params: dict[str, str]) -> dict[str, Any]:
        if not any(params.get(k) for k in ("text", "tags", "min_upload_date", "max_upload_date")):
            return _fail(3, "Parameterless searches have been disabled. Please use flickr.photos.getRecent instead.")
        matches = [p for p in self.by_date if self._matches(p, params)]
        if params.get("sort", "date-posted-desc") == "date-posted-desc":
            matches.reverse()
        per_page = min(int(params.get("per_page", 100)), 500)
        page = max(1, int(params.get("page", 1)))
        reachable = matches[:SEARCH_LIMIT]
        last_start = max(0, (math.ceil(len(reachable) / per_page) - 1) * per_page)
        start = min((page - 1) * per_page, last_start)  # past the cap, the last page repeats
        extras = set(params.get("extras", "").split(","))
        return {
            "photos": {
                "page": page,
                "pages": math.ceil(len(matches) / per_page),
                "perpage": per_page,
                "total": str(len(matches)),
                "photo": [self._result(p, extras) for p in reachable[start : start + per_page]],
            },
            "stat": "ok",
        }

    def _matches(self, photo: Photo, params: dict[str, str]) -> bool:
        if not self.leaky_licence and params.get("license"):
            if photo.license not in {int(x) for x in params["license"].split(",")}:
                return False
        if not int(params.get("min_upload_date", 0)) <= photo.dateupload <= int(params.get("max_upload_date", 2**40)):
            return False
        terms = [t for t in params.get("tags", "").split(",") if t]
        has = set(photo.tags.split())
        if any(t[1:] in has for t in terms if t.startswith("-")):
            return False
        wanted = [t for t in terms if not t.startswith("-")]
        if wanted:
            hit = all if params.get("tag_mode", "any") == "all" else any
            return hit(t in has for t in wanted)
        return True

    def _result(self, photo: Photo, extras: set[str]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": photo.id, "owner": photo.owner, "secret": "abc", "server": "1", "farm": 1,
            "title": photo.title, "ispublic": 1, "isfriend": 0, "isfamily": 0,
        }  # fmt: skip
        fields = {
            "license": str(photo.license),
            "owner_name": {"ownername": photo.ownername},
            "date_upload": {"dateupload": str(photo.dateupload)},
            "date_taken": {"datetaken": "2010-05-01 12:00:00", "datetakengranularity": 0},
            "tags": {"tags": photo.tags},
            "media": {"media": "photo", "media_status": "ready"},
        }
        for name, value in fields.items():
            if name in extras:
                result.update(value if isinstance(value, dict) else {name: value})
        if photo.original and "url_o" in extras:
            result.update(url_o=self.static_url(photo, "o"), width_o=photo.width, height_o=photo.height)
        if photo.original and "o_dims" in extras:
            result.update(o_width=str(photo.width), o_height=str(photo.height))
        return result

    def sizes(self, photo_id: str) -> dict[str, Any]:
        photo = self.photos.get(photo_id)
        if photo is None:
            return _fail(1, "Photo not found")
        sizes = [("Medium", "z", photo.width // 2, photo.height // 2), ("Large", "b", photo.width, photo.height)]
        if photo.original:
            sizes.append(("Original", "o", photo.width, photo.height))
        return {
            "sizes": {
                "canblog": 0, "canprint": 0, "candownload": 1,
                "size": [
                    {"label": label, "width": w, "height": str(h), "source": self.static_url(photo, suffix),
                     "url": f"https://www.flickr.com/photos/x/{photo.id}/sizes/{suffix}/", "media": "photo"}
                    for label, suffix, w, h in sizes
                ],
            },
            "stat": "ok",
        }  # fmt: skip

    # --- static files ----------------------------------------------------------

    def static_url(self, photo: Photo, suffix: str) -> str:
        return f"{self.base}/static/{photo.id}_abc_{suffix}.jpg"

    def image(self, name: str) -> bytes | None:
        """The file for /static/<id>_<secret>_<suffix>.jpg, with the photo's bad-file fault applied."""
        photo_id, _, suffix = name.removesuffix(".jpg").split("_")
        photo = self.photos.get(photo_id)
        if photo is None:
            return None
        scale = 2 if suffix == "z" else 1
        size = (photo.width // scale, photo.height // scale)
        fault = self.bad_photos.get(photo_id)
        if fault == "wrongsize":
            size = (size[0] + 7, size[1])
        data = self._encoded(photo, size)
        if fault == "short":
            return data[: len(data) // 2]
        if fault == "corrupt":
            return b"\x00garbage, not an image\x00" * 50
        return data

    def _encoded(self, photo: Photo, size: tuple[int, int]) -> bytes:
        key = (photo.id, *size)
        if key not in self._images:
            buffer = io.BytesIO()
            Image.new("RGB", size, photo.colour()).save(buffer, format="JPEG", quality=90)
            self._images[key] = buffer.getvalue()
        return self._images[key]


def _fail(code: int, message: str) -> dict[str, Any]:
    return {"stat": "fail", "code": code, "message": message}


def _handler(server: FlickrServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body in one segment: no delayed-ACK stalls
        wbufsize = 1 << 16

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/static/"):
                self._static(url.path.removeprefix("/static/"))
            else:
                self._api(dict(parse_qsl(url.query)))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            self._api(dict(parse_qsl(body)))

        def _api(self, params: dict[str, str]) -> None:
            if self._fault(server.next_fault("api")):
                return
            self._send(200, json.dumps(server.api(params)).encode(), "application/json")

        def _static(self, name: str) -> None:
            if self._fault(server.next_fault("static")):
                return
            if server.image_delay_s:
                time.sleep(server.image_delay_s)
            data = server.image(name)
            if data is None:
                self._send(404, b"not found", "text/plain")
                return
            with server._lock:
                server.downloads[name.split("_")[0]] += 1
            self._send(200, data, "image/jpeg")

        def _fault(self, kind: str | None) -> bool:
            """Act out one injected fault; True when the response is spoilt."""
            if kind is None:
                return False
            if kind in ("429", "500", "503"):
                headers = {"Retry-After": server.retry_after} if kind == "429" else {}
                self._send(int(kind), b"try later", "text/plain", headers)
            elif kind == "stall":
                time.sleep(server.stall_s)
                self.close_connection = True
            elif kind == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", "4000")
                self.end_headers()
                self.wfile.write(b'{"stat": "ok", "photos": ' + b" " * 100)
                self.close_connection = True
            elif kind == "badjson":
                self._send(200, b'jsonFlickrApi({"stat": "ok"', "application/json")
            elif kind == "fail105":
                self._send(200, json.dumps(_fail(105, "Service currently unavailable")).encode(), "application/json")
            elif kind == "reset":
                self.close_connection = True
            return True

        def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def make_photos(count: int, start: int = 1_300_000_000, step: int = 3600, seed_id: int = 1000) -> list[Photo]:
    """A mixed population: every licence id 0-10, some opted out, some without originals."""
    photos = []
    for n in range(count):
        photos.append(
            Photo(
                id=str(seed_id + n),
                license=n % 11,
                dateupload=start + n * step,
                width=48 + (n * 7) % 40,
                height=40 + (n * 5) % 30,
                owner=f"{100 + n % 7}@N0{n % 3}",
                ownername=f"Owner {n % 7}",
                title=f"photo {n}",
                tags="portrait no_cv" if n % 13 == 5 else "portrait face",
                original=n % 4 != 3,
            )
        )
    return photos
