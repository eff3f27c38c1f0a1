"""Imported by Python at start-up when this folder is on PYTHONPATH (tests/support/crash_points.env): arms the
crash point named by IMDB_BERT_TFX_CRASH_AT in the module that holds it, right after that module is imported."""

import importlib.abc
import os
import sys

POINT = os.environ.get("IMDB_BERT_TFX_CRASH_AT")


class _ArmAfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, module_name: str):
        self.module_name = module_name

    def find_spec(self, name, path, target=None):
        if name != self.module_name:
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_arm(module):
            exec_module(module)
            from tests.support import crash_points

            crash_points.arm(POINT, module)

        spec.loader.exec_module = exec_and_arm
        return spec


if POINT:
    from_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if from_root not in sys.path:
        sys.path.append(from_root)  # the project, for tests.support.crash_points
    from tests.support import crash_points as _crash_points

    sys.meta_path.insert(0, _ArmAfterImport(_crash_points.MODULES[POINT]))
