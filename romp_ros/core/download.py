"""Checkpoint download: resumable, checksum-verified, atomic.

:func:`download` streams a URL into ``<dest>.part``, resumes an interrupted ``.part`` with an
HTTP Range request (and starts over when the server ignores Range), checks the SHA-256 and only
then renames the file into place, so ``dest`` is either absent or complete and verified.

:data:`OFFICIAL_CHECKPOINTS` lists the official files of the ROMP project. Their SHA-256s could
not be recorded when this registry was written (no access to GitHub), so they are ``None``:
installing such a file needs an explicit hash from the user (``--sha256``), which is compared
with the downloaded bytes. Files are never installed unverified.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import http.client
import logging
import os
from pathlib import Path
import re
import socket
from types import MappingProxyType
from typing import BinaryIO, Mapping
import urllib.error
import urllib.request

from tqdm import tqdm

LOG = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
USER_AGENT = 'romp-ros-downloader/1'
_SHA256_RE = re.compile(r'^[0-9a-f]{64}$')
_CONTENT_RANGE_RE = re.compile(r'^bytes (\d+)-(\d+)/(\d+|\*)$')


class DownloadError(RuntimeError):
    """A download failed or could not be verified; the message says why and what to do."""


@dataclass(frozen=True)
class CheckpointInfo:
    """One downloadable official file.

    Attributes:
        name: registry key (``romp-ros download NAME``).
        url: where the official file is published.
        file_name: the name it is stored under in the models directory.
        sha256: its SHA-256 (lower-case hex), or None when not known to this registry.
        size: its size in bytes, or None when unknown.
        description: one line for listings.
    """

    name: str
    url: str
    file_name: str
    sha256: str | None = None
    size: int | None = None
    description: str = ''


_RELEASE = 'https://github.com/Arthur151/ROMP/releases/download/V2.0/'

# Hashes are None on purpose: they could not be verified here, and an invented hash would
# either block every download or give a false sense of safety.
OFFICIAL_CHECKPOINTS: Mapping[str, CheckpointInfo] = MappingProxyType({
    'romp': CheckpointInfo('romp', _RELEASE + 'ROMP.pkl', 'ROMP.pkl',
                           description='ROMP, HRNet-32 backbone (PyTorch weights)'),
    'bev': CheckpointInfo('bev', _RELEASE + 'BEV.pth', 'BEV.pth',
                          description='BEV, HRNet-32 backbone (PyTorch weights)'),
    'romp_onnx': CheckpointInfo('romp_onnx', _RELEASE + 'ROMP.onnx', 'ROMP.onnx',
                                description='ROMP exported to ONNX (reference CPU path)'),
    'smpl_model_data': CheckpointInfo(
        'smpl_model_data', _RELEASE + 'smpl_model_data.zip', 'smpl_model_data.zip',
        description='extra joint regressors and kid template (prepare-models --extra)'),
})


def checkpoint_info(name: str) -> CheckpointInfo:
    """The registry entry for a key ('romp') or file name ('ROMP.pkl'), case-insensitive.

    Raises:
        DownloadError: not in the registry (the message lists the known names).
    """
    wanted = name.strip().lower()
    for info in OFFICIAL_CHECKPOINTS.values():
        if wanted in (info.name, info.file_name.lower()):
            return info
    known = ', '.join(f'{i.name} ({i.file_name})' for i in OFFICIAL_CHECKPOINTS.values())
    raise DownloadError(f'unknown checkpoint {name!r}; known: {known}. For another file pass '
                        'its --url and --sha256.')


def normalise_sha256(value: str) -> str:
    """Lower-case a hex SHA-256 and check its form (DownloadError if malformed)."""
    digest = value.strip().lower()
    if not _SHA256_RE.match(digest):
        raise DownloadError(f'{value!r} is not a SHA-256 (64 hexadecimal characters)')
    return digest


def download_official(name: str, models_dir: str | Path, sha256: str | None = None,
                      url: str | None = None, *, progress: bool = True,
                      timeout: float = 30.0) -> Path:
    """Download a checkpoint into ``models_dir``, verified.

    Args:
        name: a registry key or file name (see :data:`OFFICIAL_CHECKPOINTS`); any other file
            name when ``url`` is given.
        models_dir: destination directory (created if needed).
        sha256: the expected SHA-256; required when the registry does not know it. When both
            are known they must agree.
        url: download from here instead of the registry URL (a mirror); the file must still
            match the hash.
        progress: show a tqdm progress bar.
        timeout: seconds without data before giving up (the partial file is kept).

    Raises:
        DownloadError: unknown name without ``url``, no known hash, or a failed / corrupt
            download.
    """
    try:
        info = checkpoint_info(name)
    except DownloadError:
        if url is None:
            raise
        if Path(name).name != name or name in ('', '.', '..'):
            raise DownloadError(f'{name!r} is not a plain file name') from None
        info = CheckpointInfo(name, url, name)
    given = normalise_sha256(sha256) if sha256 else None
    if info.sha256 and given and info.sha256 != given:
        raise DownloadError(f'--sha256 {given} differs from the registry hash {info.sha256} of '
                            f'{info.file_name}; refusing to guess which is right')
    expected = info.sha256 or given
    source = url or info.url
    if expected is None:
        raise DownloadError(
            f'no SHA-256 is known for {info.file_name} ({source}), so it cannot be verified. '
            'Get the hash from a source you trust (the publisher, or `sha256sum` of a copy '
            f'you trust) and pass it: romp-ros download {name} --sha256 <hex> '
            f'--models-dir {models_dir}')
    dest = Path(models_dir).expanduser() / info.file_name
    return download(source, dest, expected, progress=progress, timeout=timeout)


def download(url: str, dest: str | Path, sha256: str, *, progress: bool = True,
             timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` and verify its SHA-256 before it appears there.

    An existing ``dest`` with the right hash is kept (nothing is fetched). Otherwise the data
    goes to ``dest.part``; an existing ``.part`` is resumed with a Range request. A server that
    ignores Range (200 reply) restarts the file; a bad hash deletes the ``.part``.

    Args:
        url: http(s) URL.
        dest: final path; its directory is created if needed.
        sha256: expected SHA-256, hex.
        progress: show a tqdm progress bar.
        timeout: seconds to wait for a connection or for data.

    Returns:
        ``dest``.

    Raises:
        DownloadError: bad URL or hash, HTTP error, timeout, no network, incomplete or corrupt
            download. After a timeout or a dropped connection the ``.part`` is kept so that a
            new call resumes.
    """
    expected = normalise_sha256(sha256) if sha256 else None
    if expected is None:
        raise DownloadError(f'refusing to download {url} without an expected SHA-256')
    if not url.lower().startswith(('http://', 'https://')):
        raise DownloadError(f'only http(s) URLs are downloaded, not {url!r}')
    dest = Path(dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and _sha256_of(dest) == expected:
        LOG.info('%s is already present and verified', dest)
        return dest
    part = dest.with_suffix(dest.suffix + '.part')

    offset = part.stat().st_size if part.is_file() else 0
    if not _fetch(url, part, offset, timeout=timeout, progress=progress):
        # resume refused (416: nothing left to send, or an unexpected Content-Range): the
        # part may already be whole; otherwise fetch from scratch
        if _sha256_of(part) != expected:
            LOG.info('cannot resume %s; starting over', url)
            part.unlink(missing_ok=True)
            _fetch(url, part, 0, timeout=timeout, progress=progress)

    actual = _sha256_of(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f'SHA-256 mismatch for {url}: expected {expected}, got {actual}; the download was '
            'deleted. Retry; if it persists the file on the server changed or the expected '
            'hash is wrong.')
    os.replace(part, dest)
    LOG.info('downloaded and verified %s', dest)
    return dest


def _fetch(url: str, part: Path, offset: int, *, timeout: float, progress: bool) -> bool:
    """Append the rest of ``url`` to ``part`` from ``offset``; False if resuming is refused."""
    headers = {'User-Agent': USER_AGENT}
    if offset:
        headers['Range'] = f'bytes={offset}-'
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return False  # the part is already complete or longer than the file
        raise DownloadError(f'HTTP {err.code} {err.reason} for {url}') from err
    except urllib.error.URLError as err:
        raise DownloadError(f'cannot reach {url}: {err.reason} (no network, DNS failure or a '
                            'proxy problem?)') from err
    except (TimeoutError, socket.timeout) as err:
        raise DownloadError(f'no answer from {url} within {timeout} s') from err
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f'connection to {url} failed: {err}') from err

    with response:
        status = response.status
        length = response.headers.get('Content-Length')
        length = int(length) if length and length.isdigit() else None
        if offset and status == 206:
            match = _CONTENT_RANGE_RE.match(response.headers.get('Content-Range', ''))
            if not match or int(match.group(1)) != offset:
                return False  # a range we did not ask for: not safe to append
            mode, start = 'ab', offset
        elif status == 200:
            if offset:
                LOG.info('server ignored the Range request for %s; downloading from the start',
                         url)
            mode, start = 'wb', 0
        else:
            raise DownloadError(f'unexpected HTTP status {status} for {url}')
        total = start + length if length is not None else None
        with open(part, mode) as fh, tqdm(total=total, initial=start, unit='B',
                                          unit_scale=True, unit_divisor=1024,
                                          desc=part.name[:-len('.part')],
                                          disable=not progress, leave=False) as bar:
            received = _copy(response, fh, bar, url, timeout)
    if length is not None and received < length:
        raise DownloadError(f'connection closed after {start + received} of {total} bytes of '
                            f'{url}; run again to resume')
    return True


def _copy(response: BinaryIO, fh: BinaryIO, bar: tqdm, url: str, timeout: float) -> int:
    received = 0
    try:
        while True:
            # read1: what has arrived (up to a chunk), so a stall loses no received bytes
            chunk = response.read1(CHUNK_BYTES)
            if not chunk:
                return received
            fh.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    except (TimeoutError, socket.timeout) as err:
        raise DownloadError(f'download of {url} stalled for {timeout} s; the partial file is '
                            'kept: run again to resume') from err
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f'download of {url} was interrupted ({err}); the partial file is '
                            'kept: run again to resume') from err


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
