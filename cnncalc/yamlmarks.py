"""YAML to plain data that remembers where each mapping and value came from.

Only what `yaml.safe_load` accepts is accepted. Aliases are expanded by us, with a budget, so an alias bomb
("billion laughs") is refused quickly instead of eating memory.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from cnncalc.errors import SpecError, Where, shown_text
from cnncalc.limits import MAX_INT, MAX_YAML_DEPTH, MAX_YAML_NODES

Mark = tuple[int, int]  # 1-based line and column; (0, 0) where it is not known
Key = str | int | float | None  # a mapping key the spec may hold (a bool is an int)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class MarkedDict(dict[Key, Any]):
    """A mapping from the spec, with the position of itself and of each of its values."""

    mark: Mark = (0, 0)
    value_marks: dict[Key, Mark]
    key_marks: dict[Key, Mark]

    def mark_of(self, key: Key) -> Mark:
        return self.value_marks.get(key, self.mark) if hasattr(self, "value_marks") else self.mark

    def key_mark(self, key: Key) -> Mark:
        return self.key_marks.get(key, self.mark) if hasattr(self, "key_marks") else self.mark

    def derived(self, items: dict[Key, Any]) -> "MarkedDict":
        """A new mapping with these items and this one's marks (for rewritten layer entries)."""
        out = MarkedDict(items)
        out.mark = self.mark
        out.value_marks = dict(getattr(self, "value_marks", {}))
        out.key_marks = dict(getattr(self, "key_marks", {}))
        return out


class MarkedList(list[Any]):
    mark: Mark = (0, 0)
    item_marks: list[Mark]

    def mark_of(self, index: int) -> Mark:
        marks = getattr(self, "item_marks", [])
        return marks[index] if index < len(marks) else self.mark


def _mark(node: yaml.Node | yaml.Event) -> Mark:
    start = node.start_mark
    return (start.line + 1, start.column + 1) if start is not None else (0, 0)


class _Builder:
    def __init__(self, file: str, max_nodes: int):
        self.file = file
        self.nodes = 0
        self.max_nodes = max_nodes
        self.scalars = SafeConstructor()

    def build(self, node: yaml.Node) -> Any:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _too_many(node, self.file, self.max_nodes)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise self.error(node, f"unsupported YAML tag '{node.tag}'", "Only plain YAML is accepted (no tags).")
        if isinstance(node, yaml.MappingNode):
            try:
                self.scalars.flatten_mapping(node)  # YAML merge keys (<<), as safe_load does
            except yaml.constructor.ConstructorError as err:
                raise self.error(node, f"invalid merge key '<<': {err.problem}",
                                 "`<<:` takes an alias of a mapping (or a list of them), e.g. `<<: *defaults`.") \
                    from None
            out = MarkedDict()
            out.mark = _mark(node)
            out.value_marks = {}
            out.key_marks = {}
            for key_node, value_node in node.value:
                key = self.build(key_node)
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise self.error(key_node, "a mapping key must be a plain value")
                if key in out:
                    raise self.error(key_node, f"duplicate key '{key}'", "Remove one of the two.")
                out[key] = self.build(value_node)
                out.value_marks[key] = _mark(value_node)
                out.key_marks[key] = _mark(key_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            out_list = MarkedList(self.build(item) for item in node.value)
            out_list.mark = _mark(node)
            out_list.item_marks = [_mark(item) for item in node.value]
            return out_list
        try:
            return self.scalars.construct_object(node)
        except yaml.constructor.ConstructorError as err:
            raise self.error(node, f"unsupported YAML: {err.problem}",
                             "Only plain YAML is accepted (no Python tags).") from None
        except ValueError:  # Python refuses to read integers of more than 4,300 digits
            raise self.error(node, f"the number {shown_text(str(node.value))} is far too large",
                             f"Numbers in a spec are at most {MAX_INT:,}.") from None

    def error(self, node: yaml.Node, message: str, fix: str | None = None) -> SpecError:
        line, col = _mark(node)
        return SpecError(message, where=Where(self.file, line, col), fix=fix)


def _too_many(node: yaml.Node | yaml.Event, file: str, most: int) -> SpecError:
    line, col = _mark(node)
    return SpecError(f"the YAML expands to more than {most:,} values (an alias bomb?)", where=Where(file, line, col),
                     fix="Write it without deeply nested aliases; in a spec, use blocks and `repeat`.")


def _too_deep(node: yaml.Node | yaml.Event, file: str) -> SpecError:
    line, col = _mark(node)
    return SpecError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels", where=Where(file, line, col),
                     fix="A spec needs only a few levels: flatten the nesting.")


def _expanded_size(root: yaml.Node, file: str, most: int) -> int:
    """Values the YAML stands for once aliases are expanded, counted on the shared graph without expanding
    it (iteratively: nesting depth is also checked here, before anything recursive sees it)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        if children_done:
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > most:
                raise _too_many(node, file, most)
            sizes[key] = size
            continue
        if key in sizes:
            if sizes[key] < 0:
                line, col = _mark(node)
                raise SpecError("a YAML alias refers to itself", where=Where(file, line, col),
                                fix="Remove the recursive alias.")
            continue
        if depth > MAX_YAML_DEPTH:
            raise _too_deep(node, file)
        sizes[key] = -1  # in progress: meeting it again below means a cycle
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _scan(text: str, file: str, most: int) -> bool:
    """One pass over the parser's events, before any tree is built (composing keeps every node, about 300 bytes
    each): refuses more than `most` nodes and nesting deeper than MAX_YAML_DEPTH. Returns whether the YAML has
    aliases, the only way it can stand for more values than it has nodes."""
    count = depth = 0
    aliases = False
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            aliases = True
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            count += 1
            if count > most:
                raise _too_many(event, file, most)
            if depth >= MAX_YAML_DEPTH:
                raise _too_deep(event, file)
            depth += isinstance(event, yaml.CollectionStartEvent)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return aliases


def load_marked(text: str, file: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse YAML text into MarkedDict/MarkedList/scalars; SpecError on any YAML problem."""
    try:
        aliases = _scan(text, file, max_nodes)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = Where(file, mark.line + 1, mark.column + 1) if mark else Where(file)
        if "nesting depth" in str(err.problem):  # PyYAML 6.0.4's own limit, met while reading ahead
            raise SpecError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels", where=where,
                            fix="A spec needs only a few levels: flatten the nesting.") from None
        raise SpecError(f"invalid YAML: {err.problem or err.context}", where=where,
                        fix="Check the indentation, brackets and colons near that line.") from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {err}", where=Where(file), fix="Check the file is YAML text.") from None
    if node is None:
        return None
    if aliases:  # without them the scan's count is the size
        _expanded_size(node, file, max_nodes)
    return _Builder(file, max_nodes).build(node)
