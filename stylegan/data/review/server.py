"""The review page's HTTP server: the standard library's, on 127.0.0.1 only.

Pages are rendered here, every string from the records (Flickr titles, author
names, ids) through `html.escape`; page.js adds only text (`textContent`), so a
crafted title shows as text and never runs. The server reads no file a request
names: the page and its two static files are fixed routes, thumbnails are looked
up by face id and must lie in the dataset's image folder. Requests whose Host is
not this server's address are refused (a page elsewhere cannot rebind a name to
127.0.0.1 and post marks).
"""

from __future__ import annotations

import functools
import html
import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from stylegan.data.filter import FILTERS
from stylegan.data.review import exclusions
from stylegan.data.review.faces import (
    THUMBNAIL,
    Faces,
    Preview,
    Score,
    from_config,
    preview,
)
from stylegan.errors import StageError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never another interface: the page writes the dataset's exclusion list
STATIC = {"/page.js": "text/javascript", "/page.css": "text/css"}  # files beside this module
KEYS = "← → ↑ ↓ select · 1–5 mark · 0 clear · u undo · n / p next / previous page"


class Review:
    """What the handler serves: the faces, the exclusion list (one writer at a time) and cached previews."""

    def __init__(self, faces: Faces, exclude: Path, per_page: int):
        self.faces, self.exclude, self.per_page = faces, exclude, per_page
        self.kept_ids = {r["face_id"] for r in faces.kept}
        self.lock = threading.Lock()
        self.preview = functools.lru_cache(maxsize=4096)(functools.partial(preview, faces))

    def mark(self, face_id: Any, reason: Any) -> dict[str, Any]:
        """Save one mark (reason None: unmark) before answering; only kept faces are marked."""
        if not isinstance(face_id, str) or face_id not in self.kept_ids or reason not in (None, *exclusions.REASONS):
            raise ValueError(f"not a kept face and reason: {face_id!r}, {reason!r}")
        with self.lock:
            marks = exclusions.set_mark(self.exclude, face_id, reason)
        return {"face": face_id, "reason": marks.get(face_id), "marked": len(marks)}

    def page(self, query: dict[str, list[str]]) -> str:
        """One page of kept faces, or of faces one filter (or any) rejected: `?view=&filter=&page=`."""
        view = "rejected" if query.get("view") == ["rejected"] else "kept"
        name = query.get("filter", [""])[0]
        faces = self.faces.kept if view == "kept" else [r for r in self.faces.rejected if name in ("", r["filter"])]
        pages = max(1, math.ceil(len(faces) / self.per_page))
        number = min(max(1, _int(query.get("page", ["1"])[0])), pages)
        shown = faces[(number - 1) * self.per_page : number * self.per_page]
        marks = exclusions.read_marks(self.exclude)
        cards = "\n".join(_card(r, self._shown(r["face_id"]), marks.get(r["face_id"]), view == "kept") for r in shown)
        here = {"view": view, "filter": name}
        return PAGE.format(
            title=html.escape(f"Review: {view} faces{f' ({name})' if name else ''}, page {number} of {pages}"),
            reasons=html.escape(json.dumps(exclusions.REASONS)),
            views=self._views(view, name),
            marked=len(marks),
            exclude=html.escape(str(self.exclude)),
            keys=KEYS,
            number=number,
            pages=pages,
            prev=_href(here, max(1, number - 1)),
            next=_href(here, min(pages, number + 1)),
            cards=cards,
            first=' aria-disabled="true"' if number == 1 else "",
            last=' aria-disabled="true"' if number == pages else "",
            empty="" if shown else '<p class="empty">No faces here.</p>',
        )

    def _shown(self, face_id: str) -> Preview:
        """The face's preview; a face whose image is refused or unreadable still gets its card, without one."""
        try:
            return self.preview(face_id)
        except (PermissionError, StageError) as err:
            log.warning("face %s: %s", face_id, err)
            return Preview(None, ())

    def _views(self, view: str, name: str) -> str:
        """Links to the kept faces and to the faces each filter rejected, with their counts."""
        counts = {f: sum(r["filter"] == f for r in self.faces.rejected) for f in FILTERS}
        links = [_view_link("kept", "", f"kept ({len(self.faces.kept)})", view == "kept")]
        links.append(
            _view_link("rejected", "", f"all rejected ({len(self.faces.rejected)})", view == "rejected" and not name)
        )
        links += [_view_link("rejected", f, f"{f} ({n})", name == f) for f, n in counts.items() if n]
        return " · ".join(links)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 1


def _href(query: dict[str, str], page: int) -> str:
    return html.escape("/?" + urlencode({**{k: v for k, v in query.items() if v}, "page": page}))


def _view_link(view: str, name: str, text: str, current: bool) -> str:
    attributes = ' aria-current="page"' if current else ""
    return f'<a href="{_href({"view": view, "filter": name}, 1)}"{attributes}>{html.escape(text)}</a>'


def _link(url: Any, text: Any) -> str:
    """Escaped text, linked only to a web address (a record's URL could say javascript:)."""
    label = html.escape(str(text if text is not None else "unknown"))
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return f'<a href="{html.escape(url)}" rel="noreferrer" target="_blank">{label}</a>'
    return label


def _card(record: dict[str, Any], shown: Preview, reason: str | None, markable: bool) -> str:
    """One face: thumbnail, mark buttons (kept faces), attribution from the record, and scores."""
    face_id = html.escape(record["face_id"])
    image = (
        f'<img src="/thumb?face={html.escape(quote(record["face_id"], safe=""))}" alt="face {face_id}" '
        f'width="{THUMBNAIL}" height="{THUMBNAIL}">'
        if shown.thumbnail
        else '<p class="gone">no image</p>'
    )
    buttons = "".join(
        f'<button type="button" data-reason="{key}" aria-pressed="{str(key == reason).lower()}">'
        f"{n} {html.escape(label)}</button>"
        for n, (key, label) in enumerate(exclusions.REASONS.items(), 1)
    )
    facts = [
        ("face", face_id),
        ("photo", _link(record.get("page_url"), record.get("photo_id"))),
        ("title", html.escape(str(record.get("title") or ""))),
        ("author", html.escape(str(record.get("owner_name") or record.get("owner_id") or "unknown"))),
        ("licence", _link(record.get("license_url"), record.get("license_name") or record.get("license_id"))),
    ]
    rejection = (
        f'<p class="rejection">{html.escape(record["filter"])}: {_json(record["value"])} '
        f"(threshold {_json(record['threshold'])})</p>"
        if "filter" in record
        else ""
    )
    return (
        f'<article class="face{" marked" if reason else ""}" data-face="{face_id}" data-reason="{reason or ""}">'
        f'{image}<p class="mark">{html.escape(exclusions.REASONS.get(reason or "", ""))}</p>'
        f"{f'<div class=buttons>{buttons}</div>' if markable else ''}{rejection}"
        f"<dl>{''.join(f'<dt>{k}</dt><dd>{v}</dd>' for k, v in facts)}</dl>{_scores(shown.scores)}</article>"
    )


def _json(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value))


def _scores(scores: tuple[Score, ...]) -> str:
    rows = "".join(f"<tr><th>{s.name}</th><td>{s.value}</td><td>{html.escape(s.threshold)}</td></tr>" for s in scores)
    return f'<table class="scores">{rows}</table>' if rows else ""


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><link rel="stylesheet" href="/page.css"></head>
<body data-reasons="{reasons}">
<header>
<nav class="views">{views}</nav>
<p>marked: <span id="count">{marked}</span>, saved at each mark in <code>{exclude}</code></p>
<nav class="pages"><a id="prev" href="{prev}"{first}>← previous</a> page {number} of {pages}
<a id="next" href="{next}"{last}>next →</a></nav>
<p class="keys">{keys}</p>
<p id="status" role="status"></p>
</header>
<main id="faces">
{cards}{empty}
</main>
<script src="/page.js"></script>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    """GET: the page, page.js, page.css, /thumb?face=ID. POST /mark: {"face": ID, "reason": KEY or null}."""

    server: ReviewServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if not self._ours():
            self._send(403, "text/plain", b"wrong host")
        elif url.path == "/":
            self._send(200, "text/html", self.server.review.page(parse_qs(url.query)).encode())
        elif url.path in STATIC:
            self._send(200, STATIC[url.path], (Path(__file__).parent / url.path[1:]).read_bytes())
        elif url.path == "/thumb":
            self._thumbnail(parse_qs(url.query).get("face", [""])[0])
        else:
            self._send(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        if not self._ours() or urlsplit(self.path).path != "/mark":
            self._send(403 if urlsplit(self.path).path == "/mark" else 404, "text/plain", b"refused")
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            answer = self.server.review.mark(body.get("face"), body.get("reason"))
        except (ValueError, AttributeError) as err:
            self._send(400, "text/plain", str(err).encode())
            return
        self._send(200, "application/json", json.dumps(answer).encode())

    def _thumbnail(self, face_id: str) -> None:
        if face_id not in self.server.review.faces.by_id:
            self._send(404, "text/plain", b"no such face")
            return
        try:
            thumbnail = self.server.review.preview(face_id).thumbnail
        except PermissionError:
            self._send(403, "text/plain", b"outside the dataset")
            return
        self._send(*((200, "image/jpeg", thumbnail) if thumbnail else (404, "text/plain", b"no image")))

    def _ours(self) -> bool:
        """Host (and Origin, when sent) name this server, as 127.0.0.1 or localhost."""
        port = self.server.server_address[1]
        hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        origin = self.headers.get("Origin")
        return self.headers.get("Host") in hosts and (origin is None or origin.removeprefix("http://") in hosts)

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text") else kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a reload shows what the list file holds now
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'")  # no inline script, even if escaping failed
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class ReviewServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 holding the `Review` its handlers serve."""

    daemon_threads = True

    def __init__(self, review: Review, port: int):
        super().__init__((HOST, port), Handler)
        self.review = review


def serve(config: Path, port: int, per_page: int) -> None:
    """Serve the review page of the workflow configured by `config` until interrupted."""
    faces, exclude = from_config(config)
    server = ReviewServer(Review(faces, exclude, per_page), port)
    log.info(
        "review: http://%s:%d/ (%d kept faces); every mark is saved at once in %s; Ctrl-C stops",
        HOST,
        server.server_address[1],
        len(faces.kept),
        exclude,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
