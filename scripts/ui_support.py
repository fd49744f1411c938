"""Small helpers for ``scripts/ui.sh`` (``make ui``); each subcommand does one thing and exits non-zero on failure.

    ui_support.py port PORT             print PORT if it is free on 127.0.0.1, else a free port
    ui_support.py free PORT             exit 0 if PORT is free on 127.0.0.1, 1 if something listens there
    ui_support.py wait URL SECONDS [PID ...]
                                        wait until URL answers (any HTTP status below 500); fail early if one
                                        of the PIDs exits
    ui_support.py prefect-block NAME    (in .venv-prefect) save an OpenwopCredentials block for
                                        $OPENWOP_BASE_URL / $OPENWOP_API_KEY on the server in $PREFECT_API_URL

Only the standard library is imported at the top, so the first three run in any environment.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port(wanted: int) -> int:
    """``wanted`` if free, else any free loopback port."""
    if _is_free(wanted):
        return wanted
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by the shell) counts as dead
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def wait(url: str, seconds: float, pids: list[int]) -> int:
    """Poll ``url`` until it answers below 500; 1 on timeout, 2 if a watched process died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URLs we built
                if response.status < 500:
                    return 0
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return 0
        except (OSError, ValueError):
            pass
        dead = [pid for pid in pids if not _alive(pid)]
        if dead:
            return 2
        time.sleep(1)
    return 1


def prefect_block(name: str) -> None:
    """Save the credentials block (overwriting one of the same name)."""
    from openwop_prefect import OpenwopCredentials

    credentials = OpenwopCredentials(base_url=os.environ["OPENWOP_BASE_URL"], api_key=os.environ["OPENWOP_API_KEY"])
    credentials.save(name, overwrite=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "port":
        print(port(int(argv[1])))
        return 0
    if len(argv) >= 2 and argv[0] == "free":
        return 0 if _is_free(int(argv[1])) else 1
    if len(argv) >= 3 and argv[0] == "wait":
        return wait(argv[1], float(argv[2]), [int(p) for p in argv[3:]])
    if len(argv) == 2 and argv[0] == "prefect-block":
        prefect_block(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
