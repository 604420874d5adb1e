"""The handlers' contract module (handlers/common/contract.py), loaded by its file path.

The handlers are a pipeline's own directory, not a package on sys.path, so pipectl
cannot import them; it reads the names both sides share from the one file that
defines them: the default handlers' (the wheel carries them under
pipectl/template/handlers, a checkout at its top level; see project.template_dir).
That file imports only the standard library, so loading it costs no start-up time.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pipectl.errors import PipectlError

_PACKAGE = Path(__file__).resolve().parent
RELATIVE_PATH = Path("handlers", "common", "contract.py")
_MODULE_NAME = "pipectl._handler_contract"


def path() -> Path:
    """The contract file: in the wheel's template, else this checkout's handlers/.

    The same two places as project.template_dir, which cannot be used here: it needs
    pipectl.config, and pipectl.config needs these names.
    """
    for root in (_PACKAGE / "template", _PACKAGE.parent):
        candidate = root / RELATIVE_PATH
        if candidate.is_file():
            return candidate
    raise PipectlError(f"{RELATIVE_PATH} is missing from this installation")


@functools.cache
def load() -> ModuleType:
    """The contract module, executed once per process."""
    source = path()
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, source)
    if spec is None or spec.loader is None:
        raise PipectlError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: the Enum and dataclass machinery
    # looks a class's module up in sys.modules.
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


contract = load()
