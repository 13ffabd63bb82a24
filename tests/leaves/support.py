"""What the tests of the server and OS-process leaves share."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

import trio

from ..support.helpers import no_garbage as no_garbage


def open_fds() -> set[str]:
    """The file descriptors this process has open (Linux)."""
    return set(os.listdir("/proc/self/fd"))


def assert_no_zombie() -> None:
    """No child process has exited without being waited for."""
    with contextlib.suppress(ChildProcessError):  # no child at all
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)


@contextlib.contextmanager
def no_leaks(*, check_fds: bool = True) -> Iterator[None]:
    """Fail if the block leaves a zombie child or an open file descriptor."""
    before = open_fds()
    yield
    assert_no_zombie()
    if check_fds:
        gc.collect()  # a leaked socket would be closed here, too late
        assert open_fds() - before == set()


async def http_request(
    port: int, path: str, *, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """A minimal HTTP/1.1 client: one request, then read until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode("ascii"))
        data = bytearray()
        while chunk := await stream.receive_some():
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body
