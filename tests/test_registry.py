"""The catalogue stays whole: every kind is documented, tested by hand, compared with PyTorch, and the
README's test command is what CI runs."""
import re

from conftest import ROOT

from cnncalc.layers import KIND_CLASSES, KINDS, type_names

README = (ROOT / "README.md").read_text()
HAND_TESTS = "".join(p.read_text() for p in (ROOT / "tests" / "layers").glob("test_*.py"))


def test_every_kind_has_a_readme_row():
    missing = [kind for kind in KINDS if f"`{kind}`" not in README]
    assert not missing


def test_every_family_has_hand_worked_rule_tests():
    untested = [cls.__name__ for cls in KIND_CLASSES
                if not any(f'"{name}"' in HAND_TESTS for name in type_names(cls))]
    assert not untested


def test_every_kind_documents_its_rules():
    for cls in KIND_CLASSES:
        assert cls.shape_rule and cls.flops_rule, cls.__name__


def test_ci_runs_the_readme_test_command():
    quick_start = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.strip() for line in quick_start.strip().splitlines()]
    assert len(commands) == 2 and "cnncalc summarize" in commands[0]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"pip install .*torch==2\.13\.0", (ROOT / ".ci" / "run").read_text())


def test_every_alias_names_a_type_of_its_own_class():
    for cls in KIND_CLASSES:
        for alias, kind in cls.type_aliases.items():
            assert KINDS.get(kind) is cls, (cls.__name__, alias, kind)
