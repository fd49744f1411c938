"""The local OpenWOP host served over HTTPS, in a process of its own, for ``bench.request_overhead``.

``python -m openwop_devhost`` serves plain http only; this serves the same app (``create_app``, the same
uvicorn settings as the devhost's command line: ``openwop_devhost.server.make_server``) with the certificate
and key given, which ``bench._common.throwaway_tls`` makes (signed by a throwaway CA).

    python -m bench.tlshost --api-key K --cert server.pem --key server.key   # prints "listening on https://..."
"""

from __future__ import annotations

import argparse
import sys
import threading

from openwop_devhost import create_app
from openwop_devhost.server import bind_socket, make_server


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(description="local OpenWOP host over TLS")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    app = create_app(args.api_key)
    server = make_server(app, app.state.devhost, log_level="warning", abrupt=lambda: False)
    server.config.ssl_certfile, server.config.ssl_keyfile = args.cert, args.key
    sock = bind_socket("127.0.0.1", 0)

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    print(f"listening on https://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
