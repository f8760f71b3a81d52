"""Find a named dataset on disk, or download it with SHA-256 verification into the cache."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    sha256: str
    extract: str | None = None  # a folder the archive unpacks to


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_KRIZ = "https://www.cs.toronto.edu/~kriz/"

# Official files and their SHA-256 digests.
REMOTE: dict[str, list[RemoteFile]] = {
    "fashion-mnist": [
        RemoteFile(
            "train-images-idx3-ubyte.gz", _FASHION, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz", _FASHION, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz", _FASHION, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz", _FASHION, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    ],
    "mnist": [
        RemoteFile(
            "train-images-idx3-ubyte.gz", _MNIST, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz", _MNIST, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz", _MNIST, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz", _MNIST, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    ],
    "cifar10": [
        RemoteFile(
            "cifar-10-python.tar.gz",
            _KRIZ,
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            "cifar-10-batches-py",
        ),
    ],
    "cifar100": [
        RemoteFile(
            "cifar-100-python.tar.gz",
            _KRIZ,
            "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
            "cifar-100-python",
        ),
    ],
}


def cache_root() -> Path:
    return Path(os.environ.get("CONVCOACH_CACHE", Path.home() / ".cache" / "convcoach"))


def candidate_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Where a named set is looked for, in order."""
    dirs: list[Path] = []
    for base in (data_dir, os.environ.get("CONVCOACH_DATA")):
        if base:
            dirs += [Path(base) / name, Path(base)]
    dirs += [cache_root() / name, Path("/usr/share/datasets") / name]
    return dirs


def locate(name: str, data_dir: str | None, present: callable, download: bool = True) -> Path:
    """The first candidate folder where `present(folder)` holds, downloading if none does."""
    searched = candidate_dirs(name, data_dir)
    for folder in searched:
        if folder.is_dir() and present(folder):
            return folder
    target = cache_root() / name
    if download:
        try:
            fetch(name, target)
        except ConfigError as exc:
            raise ConfigError(
                f"dataset '{name}' not found in {', '.join(map(str, searched))} and the download failed "
                f"({exc}). Put the official files in one of those folders, pass --data-dir, "
                + (
                    "or run 'apt-get install dataset-fashion-mnist'."
                    if name == "fashion-mnist"
                    else "or retry with internet."
                )
            ) from None
        if present(target):
            return target
    raise ConfigError(f"dataset '{name}' not found in {', '.join(map(str, searched))}")


def fetch(name: str, target: Path, mirror: str | None = None) -> None:
    """Download the official files of `name` into `target`, verified and moved atomically."""
    mirror = mirror or os.environ.get("CONVCOACH_MIRROR")
    target.mkdir(parents=True, exist_ok=True)
    for remote in REMOTE[name]:
        final = target / remote.name
        if not final.exists():
            url = (mirror.rstrip("/") + "/" if mirror else remote.url) + remote.name
            download_verified(url, final, remote.sha256)
        if remote.extract and not (target / remote.extract).is_dir():
            _safe_extract(final, target)


def download_verified(url: str, final: Path, sha256: str, timeout: float = 60.0) -> None:
    """Stream `url` to a temporary file, check its SHA-256 (or a prefix of it: torchvision names its
    weight files with one), fsync, then rename into place; nothing is left behind on failure."""
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            announced, received = response.headers.get("Content-Length"), 0
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
            if announced and announced.isdigit() and received < int(announced):
                raise ConfigError(f"{url}: truncated download ({received} of {announced} bytes)")
            out.flush()
            os.fsync(out.fileno())
        if not (sha256 and digest.hexdigest().startswith(sha256)):
            raise ConfigError(f"{url}: SHA-256 mismatch (got {digest.hexdigest()[:12]}..., expected {sha256[:12]}...)")
        os.replace(tmp_name, final)
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    except http.client.HTTPException as exc:  # IncompleteRead: the connection closed before Content-Length
        raise ConfigError(f"cannot download {url}: truncated ({type(exc).__name__})") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _safe_extract(archive: Path, target: Path) -> None:
    """Unpack a tar archive, refusing members that would land outside `target`."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            dest = (target / member.name).resolve()
            if not str(dest).startswith(str(target.resolve())) or member.issym() or member.islnk():
                raise ConfigError(f"{archive}: unsafe member '{member.name}'")
        staging = Path(tempfile.mkdtemp(dir=target, prefix=".extract."))
        try:
            tar.extractall(staging)
            for item in staging.iterdir():
                os.replace(item, target / item.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
