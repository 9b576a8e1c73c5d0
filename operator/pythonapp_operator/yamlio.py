"""Reading and writing multi-document YAML the same way everywhere.

Output is block style with the renderer's key order kept (``sort_keys=False``), so the CRD file
and ``pythonapp render`` output are stable and diff well.

Input may be hostile (``pythonapp validate`` runs in CI on whatever a pull request holds), so
reading is bounded: at most :data:`MAX_BYTES` of UTF-8 text, nesting at most :data:`MAX_DEPTH`
levels, aliases expanding to at most :data:`MAX_ALIAS_NODES` nodes (a "billion laughs" file is
refused before anything walks it), at most :data:`MAX_NODES` nodes in all, and no
self-referencing anchors. Every refusal is a :class:`YamlError` with a one-line message.
"""

from __future__ import annotations

import codecs
import gc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIAS_NODES = 100_000
MAX_NODES = 1_000_000


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared sub-objects out in full: anchors (&id001) confuse readers and some tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class YamlError(ValueError):
    """A file that cannot be read as YAML; the message is one line and names the line."""


def dump_all(documents: Iterable[Any]) -> str:
    """Multi-document YAML, ``---`` before every document."""
    return yaml.dump_all(
        list(documents),
        Dumper=_NoAliasDumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        width=100,
        allow_unicode=True,
    )


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark is allowed), or a :class:`YamlError` saying what it is."""
    if len(data) > MAX_BYTES:
        raise YamlError(
            f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not read "
            "(PythonApp manifests are a few KiB; split the file)"
        )
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom):
            raise YamlError(f"{name} encoded: save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise YamlError(f"binary data (a NUL byte at offset {nul}), not YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise YamlError(f"not UTF-8 text (byte 0x{bad} at offset {exc.start})") from None


class _GuardedComposer(Composer):
    """PyYAML's composer with bounds on depth, size and alias expansion.

    For every composed node it records (expanded size, expanded depth), so an alias costs what
    it would cost written out, without expanding anything.
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._nodes = 0
        self._alias_nodes = 0
        self._measure: dict[int, tuple[int, int]] = {}

    def compose_document(self) -> Node | None:
        self._alias_nodes = 0
        self._measure = {}
        node: Node | None = super().compose_document()
        return node

    def _refuse(self, problem: str) -> ComposerError:
        return ComposerError(None, None, problem, self.peek_event().start_mark)

    if TYPE_CHECKING:  # from the parser this composer is mixed with

        def peek_event(self) -> Any: ...

        def check_event(self, *choices: type) -> bool: ...

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            anchor = self.peek_event().anchor
            target = self.anchors.get(anchor)
            if target is not None:
                measured = self._measure.get(id(target))
                if measured is None:
                    raise self._refuse(f"refused: alias *{anchor} refers to its own anchor")
                size, depth = measured
                self._alias_nodes += size
                if self._alias_nodes > MAX_ALIAS_NODES:
                    raise self._refuse(
                        f"refused: aliases expand to more than {MAX_ALIAS_NODES} nodes"
                    )
                if self._depth + depth > MAX_DEPTH:
                    raise self._refuse(f"refused: nested deeper than {MAX_DEPTH} levels")
            node: Node | None = super().compose_node(parent, index)
            return node
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(f"refused: nested deeper than {MAX_DEPTH} levels")
        if self._nodes > MAX_NODES:
            raise self._refuse(f"refused: more than {MAX_NODES} YAML nodes (split the file)")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._measure[id(node)] = self._measure_of(node)
        return node

    def _measure_of(self, node: Node) -> tuple[int, int]:
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        size, depth = 1, 0
        for child in children:
            child_size, child_depth = self._measure.get(id(child), (1, 1))
            size += child_size
            depth = max(depth, child_depth)
        return size, depth + 1


class _Constructor(SafeConstructor):
    """Safe construction; a bad scalar (``2001-02-30``, a 5000-digit int) names its line."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(None, None, str(exc), node.start_mark) from None


class _PyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _GuardedComposer,
    _Constructor,
    Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _GuardedComposer.__init__(self)
        _Constructor.__init__(self)
        Resolver.__init__(self)


_Loader: type[Any] = _PyLoader
if yaml.__with_libyaml__:  # libyaml scans and parses (fast); composing stays guarded Python
    from yaml._yaml import CParser

    class _CLoader(_GuardedComposer, CParser, _Constructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _GuardedComposer.__init__(self)
            _Constructor.__init__(self)
            Resolver.__init__(self)

    _Loader = _CLoader


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream (empty documents dropped), within the bounds above."""
    loader = None
    # Loading builds many small objects and no cycles (recursive anchors are refused): without
    # the cyclic collector a 10 MiB file loads in linear time instead of quadratic.
    collecting = gc.isenabled()
    gc.disable()
    try:
        loader = _Loader(text)
        documents = []
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                documents.append(doc)
        return documents
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = _one_line(exc.problem or exc.context or "")
        if not problem.startswith("refused:"):
            problem = f"not valid YAML: {problem}"
        raise YamlError(where + problem) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YamlError(
            f"line {line}: not valid YAML: character {exc.character:#06x} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {_one_line(str(exc))}") from None
    except UnicodeError as exc:  # text that did not come through decode(): lone surrogates
        raise YamlError(f"not valid text: {_one_line(str(exc))}") from None
    except RecursionError:  # a last line of defence: the depth bound should come first
        raise YamlError(f"refused: nested too deeply (more than {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()
        if collecting:
            gc.enable()
