"""Coverage-guided fuzzing of the compiled wire decoder against protobuf's own parser (atheris).

Not part of the test suite: it runs until a time limit and needs atheris (`pip install atheris`). Each
input is a kind byte and a body; the compiled twin must agree with the pure twin, which is protobuf's
`FromString` flattened: the same WireError-or-not, the same field values, the same violations in the
same order. A disagreement raises AssertionError, and libFuzzer saves the input as crash-*.

    python benchmarks/fuzz/fuzz_wire.py                          # 120 s, the in-place build
    python benchmarks/fuzz/fuzz_wire.py CORPUS_DIR -max_total_time=600

Without --compiled, libFuzzer sees no coverage of the C code and mutates blindly. For guided fuzzing,
build with clang an instrumented copy of the generated C (after `setup.py build_ext`) and a shared
libFuzzer for it and atheris to share (from the archive clang ships, or the one atheris installs):

    clang -shared -fPIC -O1 -g -fsanitize=fuzzer-no-link -I"$(python -c 'import sysconfig; \
        print(sysconfig.get_paths()["include"])')" ext/payswitch/_speedups/wire.c -o /tmp/fuzz/wire.so
    clang++ -shared -fPIC -o /tmp/fuzz/libfuzzer.so -Wl,--whole-archive \
        /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a -Wl,--no-whole-archive
    python benchmarks/fuzz/fuzz_wire.py CORPUS --compiled=/tmp/fuzz/wire.so --libfuzzer=/tmp/fuzz/libfuzzer.so

A CORPUS_DIR that is empty is seeded with valid messages of every kind.
"""

import ctypes
import importlib.util
import sys
from pathlib import Path

import atheris

from payswitch import hotpath
from payswitch.v1 import switch_pb2, types_pb2

KINDS = ("authorize", "capture", "void", "refund", "batch", "tokenize")
DEFAULT_SECONDS = 120
TODAY = (2026, 6)


def _compiled(path: str | None, libfuzzer: str | None):
    if path is None:
        module = hotpath.compiled_module("wire")
        if module is None:
            raise SystemExit("payswitch._speedups.wire is not built")
        return module
    if libfuzzer is not None:
        # Loaded globally first, it gives the instrumented extension the coverage hooks it calls, and
        # atheris, finding it, uses it instead of the libFuzzer inside its own core.
        ctypes.CDLL(libfuzzer, mode=ctypes.RTLD_GLOBAL)
    spec = importlib.util.spec_from_file_location("payswitch._speedups.wire", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seeds() -> list[bytes]:
    card = types_pb2.Card(number="4242424242424242", exp_month=12, exp_year=2030, cvv="123", holder_name="Ada")
    amount = types_pb2.Money(amount_minor=1999, currency="EUR", exponent=2)
    authorize = switch_pb2.AuthorizeRequest(idempotency_key="k-1", merchant_reference="order-1", amount=amount,
                                            card=card, description="Grüße")
    wallet = switch_pb2.AuthorizeRequest(idempotency_key="k-2", merchant_reference="o", amount=amount,
                                         wallet=types_pb2.Wallet(provider="applepay", token="tok"))
    card_token = switch_pb2.AuthorizeRequest(idempotency_key="k-3", merchant_reference="o", amount=amount,
                                             card_token=switch_pb2.CardToken(token="tok_" + "0" * 26, cvv="123"))
    tokenize = switch_pb2.TokenizeRequest(card=types_pb2.Card(number="4242424242424242", exp_month=12,
                                                              exp_year=2030, holder_name="Ada"))
    capture = switch_pb2.CaptureRequest(idempotency_key="c", payment_id="pay_" + "a" * 26, amount=amount)
    void = switch_pb2.VoidRequest(idempotency_key="v", payment_id="pay_" + "b" * 26)
    refund = switch_pb2.RefundRequest(idempotency_key="r", payment_id="pay_" + "c" * 26, reason="damaged")
    batch = switch_pb2.BatchRequest(items=[switch_pb2.BatchItem(authorize=authorize), switch_pb2.BatchItem(),
                                           switch_pb2.BatchItem(capture=capture), switch_pb2.BatchItem(void=void),
                                           switch_pb2.BatchItem(refund=refund),
                                           switch_pb2.BatchItem(authorize=card_token)])
    messages = [(0, authorize), (0, wallet), (0, card_token), (1, capture), (2, void), (3, refund), (4, batch),
                (5, tokenize)]
    seeds = [bytes([kind]) + message.SerializeToString() for kind, message in messages]
    group = b"\x4b" + b"\x08\x01" + b"\x4c"  # an unknown group (field 9) holding a varint
    seeds.append(bytes([0]) + group + authorize.SerializeToString())
    # Every case of the `method` oneof in one message: protobuf keeps the last and forgets the others.
    seeds.append(bytes([0]) + card_token.SerializeToString() + wallet.SerializeToString()
                 + authorize.SerializeToString() + card_token.SerializeToString())
    return seeds


def _outcome(wire, kind: str, body: bytes):
    try:
        decoded = getattr(wire, f"decode_{kind}")(body)
    except wire.WireError:
        return "WireError", []
    items = decoded if kind == "batch" else [decoded]
    values, violations = [], []
    for fields in items:
        values.append((fields.kind, [(type(value).__name__, value)
                                     for value in (getattr(fields, name) for name in wire.FIELD_NAMES[fields.kind])]))
        if fields.kind in ("authorize", "tokenize"):
            violations.append(list(getattr(wire, f"validate_{fields.kind}")(fields, *TODAY).items()))
        elif fields.kind is not None:
            violations.append(list(getattr(wire, f"validate_{fields.kind}")(fields).items()))
    return values, violations


def main() -> None:
    options = {name: value for name, _, value in (argument[2:].partition("=") for argument in sys.argv[1:]
                                                   if argument.startswith("--"))}
    arguments = [argument for argument in sys.argv if not argument.startswith("--")]
    compiled, pure = _compiled(options.get("compiled"), options.get("libfuzzer")), hotpath.pure_module("wire")
    if not any(argument.startswith("-max_total_time=") for argument in arguments):
        arguments.append(f"-max_total_time={DEFAULT_SECONDS}")
    corpus = [Path(argument) for argument in arguments[1:] if not argument.startswith("-")]
    for directory in corpus:
        if directory.is_dir() and not any(directory.iterdir()):
            for index, seed in enumerate(_seeds()):
                (directory / f"seed-{index}").write_bytes(seed)

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        kind, body = KINDS[data[0] % len(KINDS)], data[1:]
        expected, got = _outcome(pure, kind, body), _outcome(compiled, kind, body)
        if got != expected:
            raise AssertionError(f"{kind}: compiled {got!r} != pure {expected!r}")

    atheris.Setup(arguments, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
