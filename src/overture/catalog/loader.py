"""Read a catalog written as YAML: one file, or a folder of files merged together.

Besides the data, the loader records where every value came from (file and line), so
that validation can point at the line to fix. In a folder, list sections (offers,
placements…) are concatenated in file-name order and indexed in that merged order;
mapping sections (context, settings…) are merged key by key, and a key given twice is an
error, as is a duplicate key inside one YAML mapping (which YAML itself would silently
let the last one win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from overture.catalog.issues import Issue, Path
from overture.catalog.model import MAPPING_SECTIONS, SCALAR_SECTIONS, SECTIONS
from overture.rules.parser import suggest

TOP_LEVEL = (*SCALAR_SECTIONS, *MAPPING_SECTIONS, *SECTIONS, "policies")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based line of the value
    column: int  # 1-based column of the value
    block: bool  # a literal/folded block scalar: its text starts on the next line


@dataclass
class Source:
    """A catalog's raw data before validation, with where each value was written."""

    data: dict[str, Any] = field(default_factory=dict)
    locations: dict[Path, Location] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def locate(self, path: Path) -> Location | None:
        """The location of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.locations:
                return self.locations[path]
            path = path[:-1]
        return None


def read_source(path: str | FsPath) -> Source:
    """Read a YAML file or a folder of them (recursively, *.yaml and *.yml)."""
    root = FsPath(path)
    source = Source()
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            source.issues.append(
                Issue(
                    (), f"no .yaml files in {root}", "write the catalog in one or more .yaml files"
                )
            )
        for file in files:
            _read_file(file, source, shown=str(file))
    elif root.is_file():
        _read_file(root, source, shown=str(root))
    else:
        source.issues.append(
            Issue(
                (),
                f"{root} does not exist",
                "give a catalog file or folder; `overture init DIR` writes one",
            )
        )
    return source


def read_text(text: str, name: str = "<catalog>") -> Source:
    """Read a catalog from YAML text (tests, the API)."""
    source = Source()
    _merge_document(text, name, source)
    return source


def _read_file(file: FsPath, source: Source, shown: str) -> None:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        source.issues.append(Issue((), f"cannot read {shown}: {exc}", file=shown))
        return
    _merge_document(text, shown, source)


def _merge_document(text: str, file: str, source: Source) -> None:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        source.issues.append(Issue((), f"invalid YAML: {problem}", file=file, line=line))
        return
    if node is None:
        return
    if not isinstance(node, yaml.MappingNode):
        source.issues.append(
            Issue(
                (),
                "a catalog file must be a mapping of sections (offers:, placements:, …)",
                file=file,
                line=node.start_mark.line + 1,
            )
        )
        return
    reader = _NodeReader(file, source, budget=10 * len(text) + 10_000)
    try:
        _merge_sections(node, reader, source)
    except (_AliasError, RecursionError) as exc:
        message = (
            str(exc)
            if isinstance(exc, _AliasError)
            else "YAML aliases refer to the node that contains them, or nest too deep"
        )
        source.issues.append(Issue((), f"invalid YAML: {message}", file=file))


class _AliasError(Exception):
    """YAML aliases that would make the document endless or explode in size."""


def _merge_sections(node: yaml.MappingNode, reader: _NodeReader, source: Source) -> None:
    file = reader.file
    for key_node, value_node in node.value:
        key = reader.scalar_key(key_node, ())
        if key is None:
            continue
        if key not in TOP_LEVEL:
            source.issues.append(
                Issue(
                    (key,),
                    f"unknown section {key!r}",
                    suggest(key, TOP_LEVEL) or "sections: " + ", ".join(TOP_LEVEL),
                    file=file,
                    line=key_node.start_mark.line + 1,
                )
            )
            continue
        _merge_section(key, value_node, reader, source)


def _merge_section(key: str, value_node: yaml.Node, reader: _NodeReader, source: Source) -> None:
    file = reader.file
    line = value_node.start_mark.line + 1
    if key in SECTIONS or key == "policies":
        if isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "~", "null"):
            return  # an empty section
        if not isinstance(value_node, yaml.SequenceNode):
            source.issues.append(
                Issue((key,), f"{key} must be a list (items start with '- ')", file=file, line=line)
            )
            return
        items = source.data.setdefault(key, [])
        for item_node in value_node.value:
            items.append(reader.value(item_node, (key, len(items))))
    elif key in MAPPING_SECTIONS:
        if not isinstance(value_node, yaml.MappingNode):
            source.issues.append(Issue((key,), f"{key} must be a mapping", file=file, line=line))
            return
        merged = source.data.setdefault(key, {})
        for k_node, v_node in value_node.value:
            k = reader.scalar_key(k_node, (key,))
            if k is None:
                continue
            if k in merged:
                source.issues.append(
                    Issue(
                        (key, k),
                        f"{key}.{k} is given twice",
                        file=file,
                        line=k_node.start_mark.line + 1,
                    )
                )
                continue
            merged[k] = reader.value(v_node, (key, k))
    else:
        value = reader.value(value_node, (key,))
        if key in source.data and source.data[key] != value:
            source.issues.append(
                Issue((key,), f"{key} is given twice with different values", file=file, line=line)
            )
        source.data[key] = value


class _NodeReader:
    """Builds Python values from YAML nodes, recording each one's location."""

    def __init__(self, file: str, source: Source, budget: int) -> None:
        self.file = file
        self.source = source
        self.constructor = yaml.constructor.SafeConstructor()
        # Aliases make the node tree a graph: refuse cycles (an alias inside the node it
        # names) and expansion far beyond the text's size (a "billion laughs" document).
        self.budget = budget
        self.open: set[int] = set()

    def scalar_key(self, node: yaml.Node, path: Path) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.source.issues.append(
                Issue(
                    path, "keys must be plain names", file=self.file, line=node.start_mark.line + 1
                )
            )
            return None
        return str(node.value)

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _AliasError("YAML aliases expand to far more data than the file holds")
        if id(node) in self.open:
            raise _AliasError(
                f"a YAML alias at line {node.start_mark.line + 1} refers to a node that contains it"
            )
        self.open.add(id(node))
        try:
            return self._value(node, path)
        finally:
            self.open.discard(id(node))

    def _value(self, node: yaml.Node, path: Path) -> Any:
        mark = node.start_mark
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        self.source.locations[path] = Location(self.file, mark.line + 1, mark.column + 1, block)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)  # YAML merge keys (<<: *defaults)
            out: dict[Any, Any] = {}
            for k_node, v_node in node.value:
                k = self.scalar_key(k_node, path)
                if k is None:
                    continue
                if k in out:
                    self.source.issues.append(
                        Issue(
                            (*path, k),
                            f"key {k!r} is given twice",
                            "remove one of them",
                            file=self.file,
                            line=k_node.start_mark.line + 1,
                        )
                    )
                out[k] = self.value(v_node, (*path, k))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)
