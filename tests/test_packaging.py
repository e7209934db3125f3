"""Packaging: the core installs and works with torch and numpy alone.

- the sdist and the wheel build (``python -m build --no-isolation``: setuptools comes from the
  test extra, so no network is needed), the wheel's core requirements are torch (a floor, not a
  pin) and numpy, everything else sits behind an extra;
- the core modules import, ``progress_bar`` works and ``require`` says what to install when
  the optional packages (scikit-learn, tqdm, matplotlib, kymatio, scipy) are missing;
- (slow) the wheel installs into a fresh venv holding only torch, pulls nothing but numpy, builds
  every registered layer and trains a DCNN step there, and the repository's layer and functional
  tests pass against the installed wheel with only their oracles (pytest, hypothesis, scipy)
  added. The gradchecks and ``slow`` tests are left to the main run (same code, minutes here).
"""

from __future__ import annotations

import email
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("sklearn", "tqdm", "matplotlib", "kymatio", "scipy", "tfrecord", "crc32c", "google")
FORBIDDEN_DISTS = {"scikit-learn", "matplotlib", "kymatio", "tqdm", "scipy", "tfrecord", "crc32c",
                   "protobuf"}
CORE_MODULES = ("compactnn", "compactnn.layers", "compactnn.functional", "compactnn.models",
                "compactnn.init", "compactnn.registry", "compactnn.config", "compactnn.train",
                "compactnn.data", "compactnn.runtime", "compactnn.runs")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _torch_floor() -> str:
    (floor,) = [re.fullmatch(r"torch>=([\d.]+)", d).group(1)
                for d in _pyproject()["project"]["dependencies"] if d.startswith("torch")]
    return floor


def _env() -> dict:
    """The environment for a child process: nothing that would put the source tree first."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(cmd: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                               f"{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """An sdist and a wheel (built from the sdist, as ``python -m build`` does) of this tree."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT], cwd=out)
    (sdist,) = out.glob("compactnn-*.tar.gz")
    (wheel,) = out.glob("compactnn-*-py3-none-any.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_wheel_requires_only_torch_and_numpy_outside_extras(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        names = z.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        msg = email.message_from_bytes(z.read(meta))
    assert all(n.startswith(("compactnn/", "compactnn-")) for n in names), names
    assert "compactnn/_optional.py" in names and "compactnn/layers/circulant.py" in names
    requires = msg.get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert sorted(re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in core) == ["numpy", "torch"]
    (torch_req,) = [r for r in core if r.startswith("torch")]
    assert torch_req == f"torch>={_torch_floor()}", torch_req  # a floor, never an exact pin
    extras = set(msg.get_all("Provides-Extra"))
    assert {"experiments", "test"} <= extras
    behind = {re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in requires if "extra ==" in r}
    assert FORBIDDEN_DISTS <= behind
    assert msg["Requires-Python"] == _pyproject()["project"]["requires-python"]


def test_sdist_has_the_package_and_its_metadata(dists):
    with tarfile.open(dists["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "PKG-INFO", "src/compactnn/__init__.py",
            "src/compactnn/_optional.py", "src/compactnn/layers/circulant.py",
            "src/compactnn/functional/circulant.py"} <= names
    tracked = subprocess.run(["git", "ls-files", "src/compactnn"], cwd=ROOT, capture_output=True,
                             text=True)
    if tracked.returncode == 0:  # every tracked module of the package is in it
        modules = {n for n in tracked.stdout.split() if n.endswith(".py")}
        assert modules <= names, modules - names


def test_readme_quotes_the_torch_floor():
    floors = set(re.findall(r"torch>=([\d.]+)", (ROOT / "README.md").read_text()))
    assert floors == {_torch_floor()}, f"README says torch>={floors}, pyproject.toml torch>=" \
                                       f"{_torch_floor()}"


_BLOCKER = f"""
import importlib, importlib.abc, sys
BLOCKED = {OPTIONAL!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Blocker())
"""

_CORE_WITHOUT_OPTIONAL = _BLOCKER + f"""
import json, torch
for m in {CORE_MODULES!r}:
    importlib.import_module(m)
from compactnn._optional import MissingDependency, progress_bar, require
from compactnn.layers import available_layers, make_linear
from compactnn.registry import available
from compactnn.train import Classification, TrainConfig, fit
from compactnn.data import in_memory_loaders, read_idx

bar = progress_bar(range(5), total=5, desc="x", leave=False, mininterval=0.5)
seen = []
for i in bar:
    seen.append(i)
    bar.set_postfix(loss="0.1"); bar.set_postfix_str("s"); bar.update(0)
bar.close()
with progress_bar(total=3) as b:
    b.update(3)
errors = {{}}
for module, what in [("sklearn.datasets", "the digits data set"), ("matplotlib", "the plots"),
                     ("kymatio.scattering2d.frontend.torch_frontend", "the scattering features")]:
    try:
        require(module, what=what)
    except MissingDependency as e:
        assert isinstance(e, ImportError)
        errors[module] = str(e)
from compactnn.experiments.plots import figure
try:
    with figure("never.png"):
        pass
except MissingDependency as e:
    errors["plots"] = str(e)
layers = {{n: type(make_linear(n, 12, 8)).__name__ for n in available_layers()}}
print(json.dumps({{"seen": seen, "errors": errors, "layers": layers,
                  "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED),
                  "kinds": {{k: len(available(k)) for k in ("linear", "model", "dataset")}}}}))
"""


def test_core_imports_and_works_without_the_optional_packages(tmp_path):
    p = _run([sys.executable, "-c", _CORE_WITHOUT_OPTIONAL], cwd=tmp_path, timeout=180)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["seen"] == [0, 1, 2, 3, 4]
    assert res["loaded"] == []
    assert res["errors"] == {
        "sklearn.datasets": "scikit-learn is needed for the digits data set: "
                            "pip install 'compactnn[experiments]'",
        "matplotlib": "matplotlib is needed for the plots: pip install 'compactnn[experiments]'",
        "kymatio.scattering2d.frontend.torch_frontend":
            "kymatio is needed for the scattering features: pip install 'compactnn[experiments]'",
        "plots": "matplotlib is needed for the plots: pip install 'compactnn[experiments]'",
    }
    assert len(res["layers"]) >= 10 and all(res["kinds"].values())


def test_require_names_a_broken_install_and_progress_bar_uses_tqdm_when_present(tmp_path):
    from compactnn._optional import MissingDependency, progress_bar, require

    assert require("json").dumps([1]) == "[1]"
    bad = tmp_path / "brokenpkg_for_compactnn"
    bad.mkdir()
    (bad / "__init__.py").write_text("import no_such_module_for_compactnn_tests\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(MissingDependency) as e:
            require("brokenpkg_for_compactnn", extra="test", what="this test")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("brokenpkg_for_compactnn", None)
    assert str(e.value) == ("brokenpkg_for_compactnn could not be imported (No module named "
                            "'no_such_module_for_compactnn_tests') for this test: "
                            "pip install 'compactnn[test]'")
    assert "\n" not in str(e.value) and e.value.extra == "test"
    pytest.importorskip("tqdm")
    with open(os.devnull, "w") as devnull:
        bar = progress_bar([1, 2], disable=False, file=devnull)
        assert type(bar).__module__.startswith("tqdm") and list(bar) == [1, 2]
        bar.close()
    assert list(progress_bar([1, 2], disable=True)) == [1, 2]


def _local_torch_wheel() -> Path | None:
    """The installed torch's wheel in pip's find-links (installing it by path never downloads)."""
    import torch

    dirs = os.environ.get("PIP_FIND_LINKS", "").split()
    cfg = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, env=_env())
    dirs += [v for line in cfg.stdout.splitlines() if "find-links" in line
             for v in line.split("=", 1)[1].strip("'\"").split()]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for d in dict.fromkeys(dirs):
        d = d.removeprefix("file://")
        found = sorted(glob.glob(os.path.join(d, f"torch-{torch.__version__}-{tag}-*.whl")))
        if found:
            return Path(found[0])
    return None


_SMOKE = f"OPTIONAL = {OPTIONAL!r}\n" + """
import json, sys, torch, compactnn
from compactnn import DCNN
from compactnn.layers import available_layers, make_linear
shapes = {}
for name in available_layers():
    layer = make_linear(name, 16, 12)
    y = layer(torch.randn(3, 16))
    y.sum().backward()
    assert all(p.grad is not None for p in layer.parameters() if p.requires_grad), name
    shapes[name] = list(y.shape)
model = DCNN(64, 10, depth=2)
opt = torch.optim.Adam(model.parameters(), 1e-3)
loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 64)), torch.randint(0, 10, (8,)))
loss.backward()
opt.step()
print(json.dumps({"file": compactnn.__file__, "shapes": shapes, "loss": loss.item(),
                  "optional": sorted(m for m in OPTIONAL if m in sys.modules)}))
"""

# pytest run in-process so that the compactnn the tests imported can be checked afterwards
_LAYER_TESTS = """
import sys, pytest
rc = pytest.main(sys.argv[1:])
import compactnn
print("COMPACTNN_FILE=" + compactnn.__file__)
sys.exit(int(rc))
"""


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_with_torch_alone(dists, tmp_path):
    torch_wheel = _local_torch_wheel()
    if torch_wheel is None:
        pytest.skip("no local wheel of the installed torch in pip's find-links: installing one "
                    "would download it")
    timings = {}
    t0 = time.perf_counter()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    py = venv / "bin" / "python"
    pip = [py, "-m", "pip", "install", "-q"]
    _run([*pip, torch_wheel], cwd=tmp_path)
    timings["venv+torch"] = time.perf_counter() - t0

    def installed() -> dict[str, str]:
        out = _run([py, "-m", "pip", "list", "--format=json"], cwd=tmp_path).stdout
        return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(out)}

    before = installed()
    t0 = time.perf_counter()
    _run([*pip, dists["wheel"]], cwd=tmp_path)
    timings["wheel"] = time.perf_counter() - t0
    after = installed()
    added = set(after) - set(before)
    assert added <= {"compactnn", "numpy"} and "compactnn" in added, added
    assert after["torch"] == before["torch"]  # the installed torch satisfies the floor: kept
    assert not FORBIDDEN_DISTS & set(after)

    t0 = time.perf_counter()
    res = json.loads(_run([py, "-c", _SMOKE], cwd=tmp_path).stdout.strip().splitlines()[-1])
    timings["smoke"] = time.perf_counter() - t0
    assert Path(res["file"]).is_relative_to(venv), res["file"]
    assert res["optional"] == [] and len(res["shapes"]) >= 10
    assert all(s == [3, 12] for s in res["shapes"].values()), res["shapes"]

    # the layer tests' own oracles, nothing else; the tests run against the installed wheel
    t0 = time.perf_counter()
    _run([*pip, "pytest", "hypothesis", "scipy"], cwd=tmp_path)
    timings["test deps"] = time.perf_counter() - t0
    assert not {"scikit-learn", "matplotlib", "kymatio", "tqdm"} & set(installed())
    t0 = time.perf_counter()
    p = subprocess.run([str(py), "-c", _LAYER_TESTS, "-q", "-p", "no:cacheprovider",
                        "-m", "not slow", "-k", "not gradcheck",
                        str(ROOT / "tests" / "layers"), str(ROOT / "tests" / "functional")],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    timings["layer tests"] = time.perf_counter() - t0
    assert p.returncode == 0, f"layer tests against the wheel failed:\n{p.stdout[-6000:]}" \
                              f"\n{p.stderr[-3000:]}"
    (used,) = re.findall(r"^COMPACTNN_FILE=(.*)$", p.stdout, re.M)
    assert Path(used).is_relative_to(venv), used
    assert re.search(r"\d+ passed", p.stdout)
    print("fresh venv timings (s):", {k: round(v, 1) for k, v in timings.items()})
    shutil.rmtree(venv, ignore_errors=True)  # ~1 GB
