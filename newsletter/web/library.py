"""The manage page's library upload: a BibTeX, RIS or CSL-JSON export becomes liked papers.

POST only, multipart, CSRF-checked like the page's other forms; the body cap for this one
path is the export's limit (`security.body_limit`), and the file is read to at most one byte
past it, so a larger one is refused with a message instead of being parsed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import LibraryError
from newsletter.imports import ImportReport, import_likes
from newsletter.models import Subscriber
from newsletter.sources.library import MAX_LIBRARY_BYTES
from newsletter.web.core import WebContext
from newsletter.web.security import BodyTooLarge

# Renders the manage page, with keywords `imported`, `library_error` and `status`.
ManagePage = Callable[..., Response]
BUSY = (
    "Nothing was imported: another library is being imported on this site right now (papers "
    "it does not hold yet are fetched from arXiv, a few seconds per hundred). Try again in a "
    "minute."
)


class LibraryUpload:
    def __init__(self, web: WebContext, page: ManagePage) -> None:
        self.web = web
        self.page = page
        # one import at a time per server process: papers not stored yet are fetched from the
        # arXiv API inside the request (100 a call, `arxiv_api_delay_seconds` apart), so
        # parallel uploads would hold every worker thread (the unsubscribe POST included) and
        # call arXiv in parallel against its rate policy; a second upload is told to wait
        self._busy = threading.Lock()

    async def endpoint(self, request: Request) -> Response:
        # the link's signature first (no database, no body read): a forged link gets no 2 MB
        # upload read and spooled, only what every other form gets
        self.web.token(request, "manage")
        try:
            form = await request.form(max_files=1, max_fields=5, max_part_size=64 * 1024)
        except BodyTooLarge:
            raise  # the middleware answers 413
        except Exception as exc:  # malformed multipart body
            raise HTTPException(400, f"The upload could not be read: {exc}") from None
        upload = form.get("library")
        data = await upload.read(MAX_LIBRARY_BYTES + 1) if isinstance(upload, UploadFile) else b""
        try:
            return await run_in_threadpool(self.save, request, form, data)
        finally:
            await form.close()

    def save(self, request: Request, form: FormData, data: bytes) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "manage"))
        web.check_csrf(request, form, f"import:{sub.id}")
        if not data:
            return self._refused(request, sub, "Choose a file to import (a .bib, .ris or .json).")
        if not self._busy.acquire(blocking=False):
            response = self.page(request, sub, library_error=BUSY, status=503)
            response.headers["retry-after"] = "60"
            return response
        try:
            report: ImportReport = import_likes(web.pipeline, sub, data)
        except LibraryError as exc:
            return self._refused(request, sub, f"Nothing was imported: {exc}.")
        finally:
            self._busy.release()
        return self.page(request, sub, imported=report)

    def _refused(self, request: Request, sub: Subscriber, message: str) -> Response:
        return self.page(request, sub, library_error=message, status=400)
