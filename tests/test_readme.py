"""The README's first run, as a newcomer would make it: its configuration is examples/switch.toml,
which `payswitch serve` starts as it is, and each of its Python blocks runs as written against that
switch, in a fresh interpreter. The one change is the address: the switch listens on a free port
(--listen) rather than the README's 127.0.0.1:50051, which another process may hold."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)
README_ADDRESS = "127.0.0.1:50051"

pytestmark = pytest.mark.slow


def test_the_readme_configuration_is_the_example_file():
    (block,) = re.findall(r"^```toml\n(.*?)^```", README, re.S | re.M)
    assert block == (ROOT / "examples" / "switch.toml").read_text()


@pytest.fixture(scope="module")
def example_address(tmp_path_factory):
    """`payswitch serve --config examples/switch.toml` run from a fresh folder (where the example's
    relative database goes); its logs go to a file, which no amount of output can fill."""
    folder = tmp_path_factory.mktemp("readme")
    with open(folder / "serve.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "payswitch", "serve", "--config",
                                    str(ROOT / "examples" / "switch.toml"), "--listen", "127.0.0.1:0"],
                                   cwd=folder, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        ready = process.stdout.readline()
        assert ready.startswith("payswitch listening on "), (folder / "serve.log").read_text()
        yield ready.split()[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (folder / "serve.log").read_text()
        process.stdout.close()


def test_the_readme_has_the_blocks_this_test_runs():
    assert len(PYTHON_BLOCKS) == 2 and all(README_ADDRESS in block for block in PYTHON_BLOCKS)


#: What each block prints, in README order.
PRINTED = ("StatusCode.FAILED_PRECONDITION illegal_transition\n", "100 refunds in 100 payments\n")


@pytest.mark.parametrize("block, printed", list(zip(PYTHON_BLOCKS, PRINTED)), ids=["client", "batches"])
def test_each_python_block_runs_as_written(example_address, block, printed):
    code = block.replace(README_ADDRESS, example_address)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", printed), result.stderr
