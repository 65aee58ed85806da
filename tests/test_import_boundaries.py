"""runtime/, firmware_codegen/, data/, profiles/, layers/ and verify work without TensorFlow,
Keras and elman.train.

A firmware build machine should not need TensorFlow: a subprocess blocks those
imports, imports every module of the three packages, and loads a trained run's
held-out data the way verify, mcu and the firmware example do.
"""

import subprocess
import sys

BLOCK = """
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top in ("tensorflow", "keras", "tf_keras") or name.split(".")[:2] == ["elman", "train"]:
            raise ImportError(f"blocked import of {name}")
        return None

sys.meta_path.insert(0, Block())
"""

IMPORT_ALL = BLOCK + """
import elman.data, elman.firmware_codegen, elman.layers, elman.profiles, elman.runtime
import elman.verify
for package in (elman.data, elman.firmware_codegen, elman.runtime, elman.profiles,
                elman.layers, elman.verify):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
print("imported", len(sys.modules))
"""

USE_RUN = BLOCK + """
from pathlib import Path
from elman.data.held_out import load_held_out
from elman.firmware_codegen.api import codegen_run
from elman.firmware_codegen.arm.api import held_out_inputs
from elman.quantize.reader import read_ir
from elman.verify import load_verify_inputs

run, out = Path(sys.argv[1]), Path(sys.argv[2])
ir = read_ir(run / "model_int8.tflite")
assert load_held_out(run).inputs.shape == (40, 100, 6)
assert load_verify_inputs(run, ir).x_q.shape == (40, 100, 6)
assert held_out_inputs(run, ir, 3)[0].shape == (3, 100, 6)
codegen_run(run, out_dir=out, example=True)
print("used", len(list(out.rglob("*.c"))))
"""


def _run(code, *args):
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_module_imports_without_tensorflow_or_train():
    assert _run(IMPORT_ALL).startswith("imported")


def test_held_out_data_codegen_and_verify_inputs_without_tensorflow(bm_run, tmp_path):
    assert _run(USE_RUN, bm_run, tmp_path / "c").strip() == "used 4"
