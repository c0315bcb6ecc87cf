"""An S3 test server that ignores conditional writes: moto's S3 with If-None-Match dropped from
every request, so a PUT with `If-None-Match: *` overwrites an existing object (as on S3-compatible
servers without put-if-absent). Run by `scripts/s3-test-server --ignore-conditions`, which says
why; moto checks no signatures, so this server is for that one behaviour only.

Usage: python s3_ignore_conditions_server.py --port PORT   (0: a free one)
Prints "listening on 127.0.0.1:PORT" once it accepts connections; SIGTERM or SIGINT stops it, exit 0.
"""
import argparse
import logging
import os
import signal
import sys

# moto's defaults, before moto is imported: no real AWS credentials or region are looked up
os.environ.setdefault("AWS_ACCESS_KEY_ID", "m2d-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "m2d-test-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto.moto_server.werkzeug_app import (  # noqa: E402  (moto 5.x)
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402


class IgnoreConditions:
    """WSGI middleware: the request arrives at moto as if it had no If-None-Match header."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ.pop("HTTP_IF_NONE_MATCH", None)
        return self.app(environ, start_response)


class Stop(Exception):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = IgnoreConditions(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)

    def on_signal(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"listening on 127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except Stop:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
