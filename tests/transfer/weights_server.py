"""Stand-ins for download.pytorch.org and the Hugging Face hub on 127.0.0.1, serving weights of the right shapes."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from convcoach.models.imagenet import imagenet_architecture
from convcoach.models.weights import WeightsFile


def fake_weights(architecture: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of the architecture's shapes: seeded random init, BN statistics set to non-trivial values."""
    torch.manual_seed(seed)
    model = imagenet_architecture(architecture)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_mean"):
            state[key] = torch.randn_like(value) * 0.1
        elif key.endswith("running_var"):
            state[key] = torch.rand_like(value) + 0.5
    return state


def pth_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def torchvision_name(architecture: str, payload: bytes) -> WeightsFile:
    """A table entry for `payload`, named as torchvision names its files (the SHA-256 prefix in the name)."""
    return WeightsFile(architecture, f"{architecture}-{hashlib.sha256(payload).hexdigest()[:8]}.pth", 0.0)


class Files(http.server.BaseHTTPRequestHandler):
    """Serves `files` (path -> bytes); a path in `truncated` announces its length but sends half."""

    files: dict[str, bytes] = {}
    truncated: set[str] = set()
    requests: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, send_body: bool) -> None:
        path = self.path.split("?")[0]
        self.requests.append(f"{self.command} {path}")
        body = self.files.get(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", "0" * 40)  # what the hub client needs to cache a file
        self.end_headers()
        if send_body:
            self.wfile.write(body[: len(body) // 2] if path in self.truncated else body)

    def do_HEAD(self) -> None:
        self._reply(False)

    def do_GET(self) -> None:
        self._reply(True)


@contextmanager
def serve(files: dict[str, bytes], truncated: set[str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """(base URL, request log) of a server for `files`; hub files go under /ORG/NAME/resolve/main/FILE."""
    handler = type("Handler", (Files,), {"files": files, "truncated": truncated or set(), "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
