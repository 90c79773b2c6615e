"""`payswitch info`: what this installation runs on, as JSON."""

import json
import platform

import grpc
from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation

from .. import __version__
from ..hotpath import BACKENDS


def describe() -> dict:
    try:
        import uvloop

        event_loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        event_loop = "asyncio"
    return {
        "payswitch": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "grpcio": grpc.__version__,
        "protobuf": protobuf_version,
        "protobuf_backend": api_implementation.Type(),
        "event_loop": event_loop,
        "extensions": dict(BACKENDS),
        "extensions_active": all(backend == "compiled" for backend in BACKENDS.values()),
    }


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="print version and backend facts as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    print(json.dumps(describe(), indent=2))
    return 0
