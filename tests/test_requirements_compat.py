"""requirements.txt installs, and every function imports, on the Pythons Azure plans still run.

Python 3.13 is the project's Python (the venv and every other test run on it); Linux Consumption and
some Premium/Dedicated apps still run 3.11/3.12, where azure-functions 2.x does not install and the
1.26.0 pin applies (environment markers in requirements.txt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = sorted(p.parent.name for p in ROOT.glob("*/function.json"))


def find_python(version: str) -> str | None:
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-c", "import venv"], capture_output=True).returncode == 0:
        return found
    if shutil.which("pyenv"):
        versions = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
        matching = sorted((v for v in versions if v.startswith(version + ".")),
                          key=lambda v: [int(x) for x in v.split(".") if x.isdigit()])
        if matching:
            out = subprocess.run(["pyenv", "which", f"python{version}"], capture_output=True, text=True,
                                 env={**os.environ, "PYENV_VERSION": matching[-1]})
            if out.returncode == 0:
                return out.stdout.strip()
    return None


@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_requirements_install_and_every_function_imports(version: str, tmp_path: Path):
    python = find_python(version)
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(f"python{version} not found on the CI machine (pyenv has it on ours)")
        pytest.skip(f"python{version} is not installed here")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(ROOT / "requirements.txt")],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = (
        "import importlib, sys, azure.functions\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"for name in {FOLDERS!r}:\n"
        "    importlib.import_module(name)\n"
        "print(azure.functions.__version__)\n"
    )
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "1.26.0"
