"""argparse types for numeric options, so every command refuses a bad value with the same words, and
the TLS options every command that dials a service shares."""

import argparse


def _bounded(convert, low=None, high=None, *, low_exclusive=False):
    def parse(text: str):
        value = convert(text)
        too_low = low is not None and (value <= low if low_exclusive else value < low)
        if too_low or (high is not None and value > high) or value != value:  # NaN compares unequal
            if high is None:
                raise argparse.ArgumentTypeError(f"must be {'>' if low_exclusive else '>='} {low}, got {text}")
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {text}")
        return value
    return parse


positive_int = _bounded(int, 1)
positive_float = _bounded(float, 0, low_exclusive=True)
non_negative_float = _bounded(float, 0)
probability = _bounded(float, 0.0, 1.0)


def int_between(low: int, high: int):
    return _bounded(int, low, high)


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS (docs/tls.md); without --tls-ca the connection is plaintext")
    group.add_argument("--tls-ca", help="PEM file of the CA the server's certificate must chain to")
    group.add_argument("--tls-cert", help="this client's certificate chain (mutual TLS)")
    group.add_argument("--tls-key", help="this client's private key (mutual TLS)")
    group.add_argument("--tls-server-name", help="the name to expect in the server's certificate")


def client_tls(args: argparse.Namespace):
    """The ClientTls the options describe, or None for plaintext; a bad file exits with its reason."""
    if args.tls_ca is None:
        if args.tls_cert or args.tls_key or args.tls_server_name:
            raise SystemExit("--tls-cert, --tls-key and --tls-server-name need --tls-ca")
        return None
    from ..tls import ClientTls, TlsConfigError

    try:
        return ClientTls.load(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name, where="--tls")
    except TlsConfigError as error:
        raise SystemExit(str(error)) from None
