"""Build steps metadata cannot express: protobuf code generation and the Cython hot path.

Protos are generated into src/payswitch/v1 before build_py copies the package, so editable and
regular installs both see them. Extensions are optional at build time: a machine without a C compiler
still gets a working package with the pure-Python twins (PAYSWITCH_REQUIRE_EXTENSIONS=1 makes the
build fail instead, as CI wants).
"""

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent.resolve()
PROTO_ROOT = ROOT / "protos"
GENERATED_DIR = ROOT / "src" / "payswitch" / "v1"
EXT_ROOT = ROOT / "ext"
HEADER = "# DO NOT EDIT: generated from protos/ by `python setup.py generate_protos` (grpcio-tools).\n"


def generate_protos() -> None:
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "payswitch" / "v1").glob("*.proto"))
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={ROOT / 'src'}",
        f"--pyi_out={ROOT / 'src'}",
        f"--grpc_python_out={ROOT / 'src'}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on " + " ".join(protos))
    for generated in GENERATED_DIR.glob("*_pb2*.py*"):
        text = generated.read_text()
        if not text.startswith(HEADER):
            generated.write_text(HEADER + text)


class BuildPyWithProtos(build_py):
    def run(self):
        generate_protos()
        super().run()


class OptionalBuildExt(build_ext):
    """Builds the hot path, or warns and leaves the pure twins in charge."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back to pure Python
            self._fallback(error)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            self._fallback(error)

    @staticmethod
    def _fallback(error):
        if os.environ.get("PAYSWITCH_REQUIRE_EXTENSIONS") == "1":
            raise error
        print(f"WARNING: payswitch extensions not built ({error}); the pure-Python twins will be used",
              file=sys.stderr)


def extensions():
    sources = sorted(EXT_ROOT.glob("payswitch/_speedups/*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize

    modules = []
    for source in sources:
        dotted = ".".join(source.relative_to(EXT_ROOT).with_suffix("").parts)
        modules.append(Extension(dotted, [str(source.relative_to(ROOT))], libraries=["crypto"],
                                 extra_compile_args=["-O3"]))
    return cythonize(modules, include_path=[str(EXT_ROOT)], language_level=3,
                     compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True})


if "generate_protos" in sys.argv:
    generate_protos()
    sys.exit(0)

setup(
    ext_modules=extensions(),
    cmdclass={"build_py": BuildPyWithProtos, "build_ext": OptionalBuildExt},
)
