"""One error family: every error a user can cause is an AnalogsimError and its builtin.

The package's source is read (ast), not imported: a ``raise`` of a bare builtin exception class,
or of a class of ours outside the family, fails here unless it is one of the few internal
invariants below, each with its reason.
"""

from __future__ import annotations

import ast
import builtins
import pickle
from pathlib import Path

import pytest
import torch

from analogsim import errors
from analogsim.errors import AnalogsimError

PACKAGE = Path(__file__).resolve().parent.parent / "analogsim"

#: (function, exception) → why it is not an error a user can cause.
ALLOWED = {
    ("_check_value", "TypeError"): "the card schema declares a field type no validator handles: "
                                   "a bug in analogsim, whatever the card says",
    ("step", "NotImplementedError"): "Method.step, the abstract step every training method "
                                     "overrides",
    ("_crosscheck", "CrosscheckDisagreement"): "a finding, not an error: the backends disagree "
                                               "(exit code 1)",
}

#: Each error class and the builtin a Python user may catch it as.
BUILTIN_OF = {
    errors.UsageError: ValueError,
    errors.ArgumentTypeError: TypeError,
    errors.MissingFileError: FileNotFoundError,
    errors.MissingExtraError: ImportError,
    errors.CardError: ValueError,
    errors.UnknownChipError: KeyError,
    errors.ConversionError: ValueError,
    errors.StateError: RuntimeError,
    errors.ShapeError: ValueError,
    errors.ResourceError: MemoryError,
    errors.DataError: ValueError,
    errors.MissingDataFileError: FileNotFoundError,
    errors.ResultsFileError: ValueError,
    errors.MissingResultsFileError: FileNotFoundError,
    errors.SpecError: ValueError,
    errors.MissingSpecFileError: FileNotFoundError,
}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for path in sorted(PACKAGE.rglob("*.py"))]


def _raised_name(node: ast.Raise) -> str | None:
    """The class name a ``raise`` names (``X``, ``X(...)``, ``m.X(...)``); None for a bare
    ``raise`` or a raise of a lower-case variable (an exception object or a class argument)."""
    target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    name = (target.id if isinstance(target, ast.Name)
            else target.attr if isinstance(target, ast.Attribute) else None)
    return name if name and name[0].isupper() else None


class _RaiseFinder(ast.NodeVisitor):
    """Collects (where, innermost function or ``<module>``, class name) of named raises."""

    def __init__(self, path: Path) -> None:
        self.path = path.relative_to(PACKAGE.parent)
        self.functions = ["<module>"]
        self.found: list[tuple[str, str, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Raise(self, node: ast.Raise) -> None:
        name = _raised_name(node) if node.exc is not None else None
        if name:
            self.found.append((f"{self.path}:{node.lineno}", self.functions[-1], name))
        self.generic_visit(node)


def _raises() -> list[tuple[str, str, str]]:
    """(where, function, class name) of every raise of a named class in the package."""
    found = []
    for path, tree in _modules():
        finder = _RaiseFinder(path)
        finder.visit(tree)
        found += finder.found
    return found


def _family() -> set[str]:
    """The names of the package's exception classes that derive from AnalogsimError."""
    bases = {}
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                                    for b in node.bases]
    family = {"AnalogsimError"}
    grown = True
    while grown:
        new = {name for name, parents in bases.items() if family & set(parents)} - family
        family |= new
        grown = bool(new)
    return family


def _is_builtin_exception(name: str) -> bool:
    """A builtin Exception (SystemExit and KeyboardInterrupt are exits, not errors)."""
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, Exception)


def test_every_raise_is_of_the_error_family():
    family = _family()
    ours = {node.name for _, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)}
    wrong = [f"{where} ({function}): raise {name}" for where, function, name in _raises()
             if (_is_builtin_exception(name) or (name in ours and name not in family))
             and (function, name) not in ALLOWED]
    assert not wrong, ("raise an AnalogsimError subclass (analogsim/errors.py) for an error a "
                       "user can cause, or allow-list an internal invariant here with its "
                       "reason:\n" + "\n".join(wrong))


def test_the_allow_list_is_small_and_current():
    raised = {(function, name) for _, function, name in _raises()}
    stale = sorted(set(ALLOWED) - raised)
    assert not stale, f"allow-listed raises that no longer exist: {stale}"
    assert len(ALLOWED) <= 5


def test_no_assert_in_the_package():
    """``python -O`` strips asserts: a check that matters raises."""
    found = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for path, tree in _modules()
             for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert not found, found


def test_the_walk_sees_the_package():
    """A guard on the guard: the walk finds the raises it checks."""
    raises = _raises()
    assert len(raises) > 200
    assert any(name == "CardError" for _, _, name in raises)
    assert any(function == "<module>" and name == "MissingExtraError"
               for _, function, name in raises)


@pytest.mark.parametrize("error", list(BUILTIN_OF), ids=lambda e: e.__name__)
def test_each_error_is_catchable_as_its_builtin(error):
    builtin = BUILTIN_OF[error]
    message = f"the 'x' of f must be ≥ 0; got {error.__name__}"
    with pytest.raises(builtin, match=f"^the 'x' of f must be ≥ 0; got {error.__name__}$"):
        raise error(message)
    with pytest.raises(AnalogsimError):
        raise error(message)
    assert str(error(message)) == message  # neither quoted (KeyError) nor errno-formatted
    assert str(pickle.loads(pickle.dumps(error(message)))) == message  # crosses processes


def test_every_error_class_has_its_builtin():
    classes = {value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, AnalogsimError)}
    assert classes - {AnalogsimError} == set(BUILTIN_OF)


def test_require_file_tells_missing_from_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"spec file '.*none\.toml' does not exist"):
        errors.require_file(tmp_path / "none.toml", "spec file", errors.SpecError,
                            errors.MissingSpecFileError)
    with pytest.raises(errors.SpecError, match=r"spec file '.*' is a folder; expected a file"):
        errors.require_file(tmp_path, "spec file", errors.SpecError,
                            errors.MissingSpecFileError)
    (tmp_path / "spec.toml").write_text("")
    errors.require_file(tmp_path / "spec.toml", "spec file", errors.SpecError,
                        errors.MissingSpecFileError)


def test_library_errors_are_catchable_as_builtins():
    from analogsim.datasets import batches
    from analogsim.programming import drift, program
    from analogsim.train.trainer import TrainingConfig

    with pytest.raises(ValueError, match=r"The 'seed' of program must be a non-negative integer; "
                                         r"got -1\."):
        program(None, seed=-1)
    with pytest.raises(ValueError, match=r"The 't_seconds' of drift must be a time ≥ 0 s "
                                         r"and ≤ 1e\+10 s \(about 317 years\); got -1\.0\."):
        drift(None, -1.0)
    with pytest.raises(errors.UsageError, match=r"epochs and batch_size must be ≥ 1, got "
                                                r"epochs=0, batch_size=128"):
        TrainingConfig(epochs=0)
    x = torch.arange(2)
    with pytest.raises(ValueError, match=r"shuffle=True needs a torch\.Generator .*got "
                                         r"generator=None"):
        next(batches(x, x, 1, shuffle=True))


@pytest.mark.parametrize("error", list(BUILTIN_OF), ids=lambda e: e.__name__)
def test_each_error_can_be_built_through_its_new(error):
    # tblib's exception pickling (installed by Dask distributed, which carries errors from
    # workers) builds exceptions with cls.__new__(cls, *args); with two builtin bases of
    # different layouts the first in the order of bases must be the one whose layout it has
    built = error.__new__(error, "a message")
    assert isinstance(built, BUILTIN_OF[error]) and isinstance(built, AnalogsimError)
