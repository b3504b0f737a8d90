"""Checkpoint downloader against a local HTTP server (resume, checksum, atomicity, errors)."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading

import pytest

from romp_ros.core.download import (
    OFFICIAL_CHECKPOINTS,
    DownloadError,
    checkpoint_info,
    download,
    download_official,
)

PAYLOAD = bytes(range(256)) * 400  # 102400 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Behaviour by path prefix: /range, /norange, /corrupt, /stall, /cut; anything else 404."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        server = self.server
        mode = self.path.strip('/').split('/')[0]
        header = self.headers.get('Range')
        server.requests.append((self.path, header))
        if mode not in ('range', 'norange', 'corrupt', 'stall', 'cut'):
            self.send_error(404, 'Not Found')
            return
        body = PAYLOAD
        if mode == 'corrupt':
            body = bytes(reversed(PAYLOAD))
        start = 0
        if header and mode != 'norange':
            start = int(re.match(r'bytes=(\d+)-', header).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header('Content-Range', f'bytes */{len(body)}')
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(206)
            self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header('Content-Length', str(len(rest)))
        self.end_headers()
        first_call = server.calls.setdefault(mode, 0) == 0
        server.calls[mode] += 1
        if mode in ('stall', 'cut') and first_call:
            half = len(rest) // 2
            server.sent += half  # counted before sending: the client may finish first
            self.wfile.write(rest[:half])
            self.wfile.flush()
            if mode == 'stall':
                # hold the connection until the test releases it: the client must give up on
                # its own timeout first, whatever the machine's load
                server.release.wait(10.0)
            return  # 'cut': close the connection early
        server.sent += len(rest)
        self.wfile.write(rest)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.requests, httpd.calls, httpd.sent = [], {}, 0
    httpd.release = threading.Event()
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.base = f'http://127.0.0.1:{httpd.server_address[1]}'
    yield httpd
    httpd.release.set()  # never leave a handler thread waiting
    httpd.shutdown()
    httpd.server_close()


def test_fresh_download_is_verified_and_leaves_no_part(server, tmp_path):
    dest = tmp_path / 'sub' / 'model.pth'
    assert download(f'{server.base}/range/model.pth', dest, PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / 'sub' / 'model.pth.part').exists()
    assert server.requests == [('/range/model.pth', None)]


def test_resume_sends_range_and_appends(server, tmp_path):
    dest = tmp_path / 'model.pth'
    part = tmp_path / 'model.pth.part'
    part.write_bytes(PAYLOAD[:30000])
    download(f'{server.base}/range/model.pth', dest, PAYLOAD_SHA, progress=False)
    assert server.requests == [('/range/model.pth', 'bytes=30000-')]
    assert server.sent == len(PAYLOAD) - 30000  # only the missing tail went over the wire
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    dest = tmp_path / 'model.pth'
    (tmp_path / 'model.pth.part').write_bytes(b'\xff' * 5000)  # not even a correct prefix
    download(f'{server.base}/norange/model.pth', dest, PAYLOAD_SHA, progress=False)
    assert server.requests == [('/norange/model.pth', 'bytes=5000-')]
    assert dest.read_bytes() == PAYLOAD  # the 200 body replaced the part, not appended


def test_complete_part_answered_416_is_verified_and_installed(server, tmp_path):
    dest = tmp_path / 'model.pth'
    (tmp_path / 'model.pth.part').write_bytes(PAYLOAD)
    download(f'{server.base}/range/model.pth', dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.sent == 0


def test_checksum_failure_deletes_download_and_keeps_old_file(server, tmp_path):
    dest = tmp_path / 'model.pth'
    dest.write_bytes(b'previous version')
    with pytest.raises(DownloadError) as err:
        download(f'{server.base}/corrupt/model.pth', dest, PAYLOAD_SHA, progress=False)
    actual = hashlib.sha256(bytes(reversed(PAYLOAD))).hexdigest()
    assert PAYLOAD_SHA in str(err.value) and actual in str(err.value)
    assert not (tmp_path / 'model.pth.part').exists()
    assert dest.read_bytes() == b'previous version'  # never replaced by unverified bytes


def test_http_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(DownloadError, match='HTTP 404'):
        download(f'{server.base}/nothing/model.pth', tmp_path / 'm.pth', PAYLOAD_SHA,
                 progress=False)
    assert list(tmp_path.iterdir()) == []


def test_stall_times_out_keeps_part_and_next_call_resumes(server, tmp_path):
    dest = tmp_path / 'model.pth'
    url = f'{server.base}/stall/model.pth'
    with pytest.raises(DownloadError, match='stalled'):
        download(url, dest, PAYLOAD_SHA, progress=False, timeout=0.3)
    # the server is still holding the stalled response: the client gave up on its timeout
    assert not server.release.is_set()
    server.release.set()
    part = tmp_path / 'model.pth.part'
    assert part.read_bytes() == PAYLOAD[:len(PAYLOAD) // 2]
    assert not dest.exists()
    download(url, dest, PAYLOAD_SHA, progress=False, timeout=5)
    assert server.requests[-1] == ('/stall/model.pth', f'bytes={len(PAYLOAD) // 2}-')
    assert dest.read_bytes() == PAYLOAD


def test_dropped_connection_keeps_part_for_resume(server, tmp_path):
    dest = tmp_path / 'model.pth'
    url = f'{server.base}/cut/model.pth'
    with pytest.raises(DownloadError, match='resume'):
        download(url, dest, PAYLOAD_SHA, progress=False)
    assert (tmp_path / 'model.pth.part').stat().st_size == len(PAYLOAD) // 2
    download(url, dest, PAYLOAD_SHA, progress=False)
    assert server.requests[-1][1] == f'bytes={len(PAYLOAD) // 2}-'
    assert dest.read_bytes() == PAYLOAD


def test_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match='cannot reach'):
        download(f'http://127.0.0.1:{port}/m.pth', tmp_path / 'm.pth', PAYLOAD_SHA,
                 progress=False, timeout=2)


def test_verified_existing_file_is_not_fetched_again(server, tmp_path):
    dest = tmp_path / 'model.pth'
    dest.write_bytes(PAYLOAD)
    download(f'{server.base}/range/model.pth', dest, PAYLOAD_SHA, progress=False)
    assert server.requests == []


def test_refuses_without_hash_or_with_bad_scheme(tmp_path):
    with pytest.raises(DownloadError, match='SHA-256'):
        download('http://127.0.0.1:9/m', tmp_path / 'm', None, progress=False)
    with pytest.raises(DownloadError, match='not a SHA-256'):
        download('http://127.0.0.1:9/m', tmp_path / 'm', 'abc', progress=False)
    with pytest.raises(DownloadError, match='http'):
        download('file:///etc/passwd', tmp_path / 'm', PAYLOAD_SHA, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_registry_has_official_urls_and_no_invented_hashes(tmp_path):
    assert {'romp', 'bev'} <= set(OFFICIAL_CHECKPOINTS)
    assert checkpoint_info('romp').url == (
        'https://github.com/Arthur151/ROMP/releases/download/V2.0/ROMP.pkl')
    assert checkpoint_info('BEV.pth') is checkpoint_info('bev')  # by file name too
    for info in OFFICIAL_CHECKPOINTS.values():
        assert info.url.startswith('https://github.com/Arthur151/ROMP/releases/download/')
        assert info.url.endswith('/' + info.file_name)
        assert info.sha256 is None  # unknown here; see docs/body_models.md
    with pytest.raises(DownloadError, match='unknown checkpoint'):
        checkpoint_info('nope')


def test_official_download_refuses_an_unverifiable_file(tmp_path):
    with pytest.raises(DownloadError, match='--sha256'):
        download_official('ROMP.pkl', tmp_path, progress=False)
    with pytest.raises(DownloadError, match='unknown checkpoint'):
        download_official('ROMP_ResNet50_V1.pkl', tmp_path, sha256=PAYLOAD_SHA, progress=False)
    with pytest.raises(DownloadError, match='plain file name'):
        download_official('../evil.pkl', tmp_path, sha256=PAYLOAD_SHA, url='http://x/y')
    assert list(tmp_path.iterdir()) == []


def test_official_download_with_mirror_url_and_explicit_hash(server, tmp_path):
    path = download_official('ROMP.pkl', tmp_path, sha256=PAYLOAD_SHA.upper(),
                             url=f'{server.base}/range/ROMP.pkl', progress=False)
    assert path == tmp_path / 'ROMP.pkl' and path.read_bytes() == PAYLOAD
    other = download_official('ROMP_ResNet50_V1.pkl', tmp_path, sha256=PAYLOAD_SHA,
                              url=f'{server.base}/range/x', progress=False)
    assert other.read_bytes() == PAYLOAD
