"""KNOWN_PATCHES (recorded per build in the migration history) names every workflow.patched id the code uses."""
import ast
import importlib
from pathlib import Path

from workflows.temporal.worker import KNOWN_PATCHES

TEMPORAL = Path(__file__).resolve().parents[1] / "temporal"
ROOT = TEMPORAL.parents[1]


def patch_ids_in_code() -> dict[str, str]:
    """Every id given to workflow.patched / workflow.deprecate_patch under workflows/temporal/ -> where."""
    found = {}
    for path in sorted(TEMPORAL.rglob("*.py")):
        module = None
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("patched", "deprecate_patch")):
                continue
            arg = node.args[0]
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(arg, ast.Constant):
                found[arg.value] = where
            else:
                # A module constant (PATCH_...): its value, from the module itself.
                assert isinstance(arg, ast.Name), f"{where}: patch id is neither a string nor a module constant"
                module = module or importlib.import_module(
                    ".".join(path.relative_to(ROOT).with_suffix("").parts))
                found[getattr(module, arg.id)] = where
    return found


def test_known_patches_are_exactly_the_ids_the_workflows_use():
    in_code = patch_ids_in_code()
    assert len(in_code) >= 6  # the walk finds the calls (six ids when this test was written)
    missing = {pid: where for pid, where in in_code.items() if pid not in KNOWN_PATCHES}
    assert not missing, f"add to KNOWN_PATCHES in workflows/temporal/worker.py: {missing}"
    assert sorted(set(KNOWN_PATCHES)) == sorted(in_code), "KNOWN_PATCHES lists an id no workflow uses"
    assert len(KNOWN_PATCHES) == len(set(KNOWN_PATCHES))
