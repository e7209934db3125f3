"""compactnn.runtime: the opt-in malloc setting (checked in subprocesses: it is process-wide)."""

import subprocess
import sys

import pytest

from compactnn import cli
from compactnn.runtime import _libc, keep_freed_memory

FAULTS = """
import resource, sys, torch
from compactnn import make_linear
from compactnn.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
layer = make_linear("dc", 4096, 4096)
x = torch.randn(128, 4096, requires_grad=True)
g = torch.randn(128, 4096)
for _ in range(20):  # warm-up: the heap reaches its steady size
    layer(x).backward(g)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    layer(x).backward(g)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10)
"""

glibc = pytest.mark.skipif(_libc() is None, reason="needs glibc's mallopt")


@glibc
def test_keep_freed_memory_removes_page_faults_of_a_training_step():
    out = subprocess.run([sys.executable, "-c", FAULTS, "keep"], capture_output=True, text=True,
                         check=True).stdout
    # each step allocates ~8 tensors of 2 MiB (512 pages each); without the setting glibc
    # often hands some back to the kernel and re-faults them on every step (measured here:
    # 0–940 faults per step, run to run); with it, fewer than half a tensor's pages
    assert float(out) < 256


def test_keep_freed_memory_rejects_a_bad_size():
    with pytest.raises(ValueError, match="max_block_mib"):
        keep_freed_memory(0)


@glibc
def test_cli_flag_applies_it(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    assert cli.main(["--keep-freed-memory", "list"]) == 0
    assert calls == [1] and "dc" in capsys.readouterr().out
