"""Offline fetch tests: recorded MAST and Gaia answers (VCR cassettes) and a local file server.

The cassettes in ``cassettes/`` are written by ``make_cassettes.py`` in the services' documented
formats (MAST ``/api/v0/invoke`` JSON, the Portal columns configuration, Gaia TAP async jobs
with a VOTable result).  They replay with record mode ``none``: a request that is not recorded
fails the test.  Requests are matched on method, URL and the decoded form body
(:func:`fetchkit.form_matcher`), so a change in what the code asks MAST or Gaia fails too.
Downloads go to a local HTTP server (``flc_server``) serving real tiny FLC files, reached
through ``--download-url``.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fetchkit import CASSETTES, EXPOSURES, form_matcher, served_flc


def pytest_recording_configure(config, vcr):
    vcr.register_matcher("form", form_matcher)


@pytest.fixture(scope="session")
def record_mode() -> str:
    return "none"


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture
def vcr_config() -> dict:
    return {
        "record_mode": "none",
        "match_on": ["method", "scheme", "host", "port", "path", "query", "form"],
        "ignore_localhost": True,
    }


# ------------------------------------------------------------------------ local MAST download
class _Handler(http.server.BaseHTTPRequestHandler):
    """``GET/HEAD /api/v0.1/Download/file?uri=mast:HST/product/<name>``: the file, or 404."""

    folder: Path
    log: list

    def _file(self) -> Path | None:
        query = parse_qs(urlparse(self.path).query)
        uri = query.get("uri", [""])[0]
        name = uri.rsplit("/", 1)[-1]
        path = self.folder / name
        return path if name and path.is_file() else None

    def _send(self, body: bool) -> None:
        path = self._file()
        self.log.append((self.command, self.path))
        if path is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self):
        self._send(True)

    def do_HEAD(self):
        self._send(False)

    def log_message(self, *args):
        pass


@pytest.fixture
def flc_server(tmp_path):
    """A local MAST download endpoint serving the recorded exposures as real FLC files.

    Yields ``(base_url, folder, log)``: the URL to pass as ``--download-url``, the folder it
    serves and the list of ``(method, path)`` requests it answered.
    """
    folder = tmp_path / "archive"
    for rootname, filt in EXPOSURES:
        served_flc(folder, rootname, filt)
    handler = type("Handler", (_Handler,), {"folder": folder, "log": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v0.1/Download/file", folder, handler.log
    finally:
        server.shutdown()
        server.server_close()
