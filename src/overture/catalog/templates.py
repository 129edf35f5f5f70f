"""Offer content templates: Jinja2's sandboxed environment, checked at validation.

Content is data, never code: templates run in Jinja2's immutable sandbox, which refuses
access to Python internals and any mutation. They see five variables, the same names
rules use: `profile`, `context`, `segment`, `offer` and `placement`. Validation parses
every template and checks each `profile.x` / `context.x` / `offer.x` / `segment.x` it
reads against the schemas, so a typo is caught before deployment, not at render time.

A missing value renders as an empty string; `{{ profile.first_name or 'there' }}` gives
a default. Placements with `render: html` escape values (a profile field cannot inject
markup); `render: text` leaves them as they are.

Cost is bounded too (the limits below, docs/catalog.md "Template limits"). The sandbox
alone stops escapes, not work: `{{ 'x' * 10**9 }}` is folded into a 1 GB constant when
Jinja compiles it, nested loops run on, a macro calling itself ends in RecursionError. So
the environment here intercepts `*`, `**`, `+` and `%` (which also stops Jinja folding
them at compile time) and checks the size of what they would build before building it;
loop iterations, calls, the items lazy filters (select, map, reverse, …) hand on, and the
characters or items filters, methods, comparisons, tests, slices, operators and prints
read or build are charged to a per-render budget of steps, the filters whose work grows
faster than their input (wordwrap, urlize, …) by that work; calls may nest only so deep;
the filters and string methods that can multiply a size check their arguments first; the
lists and mappings a template builds are measured as text (one holding another twice
counts it twice: printing or comparing it costs that much); and a rendered field may be
only so long. The steps decide, not the clock, so a template renders or fails the same
way on any machine, loaded or not (the clock is only a backstop, far above). Going over a
limit raises TemplateLimitError, a Jinja runtime error, where the engine already catches
a failing template. Validation evaluates a template's constant parts under the same checks
(all of them on one budget, see ValidationBudget), so what is over a limit whatever the
profile is refused before deployment.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass
from string import Formatter
from types import BuiltinMethodType, GeneratorType, MethodType
from typing import Any, cast

from jinja2 import TemplateRuntimeError, TemplateSyntaxError, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext, Macro, Undefined, str_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from markupsafe import Markup

from overture.rules.parser import suggest

VARIABLES = ("profile", "context", "segment", "offer", "placement")

# -- limits ------------------------------------------------------------------------------

MAX_OUTPUT = 64 * 1024
"""The longest a rendered field may be, in characters; also the longest string (or list,
in items) one operation of a template may build — a repetition, a concatenation, a
filter's or a call's result — the longest value it may print, and the most text a list or
mapping it builds may hold. Offer content is a title, a body, a link: 64 KiB is far above
any of them and small enough that a few of them cost nothing."""

MAX_STEPS = 10_000
"""The work one render may do, in steps: one per loop iteration and call (a macro, a
method), one per item for the filters that run code for each item (sort, map, select,
unique, groupby, join, sum, …) and one more per attribute they read of it, one per item a
lazy filter (select, reject, map, selectattr, rejectattr, unique, batch, slice, items,
reverse) hands on, one per 64 characters or items that a filter, method, comparison,
test, slice or operator reads or builds or that is printed, and the work of the filters
and methods that grow faster than their input (wordwrap, urlize, title, striptags, a
search for a long needle, …) by what it is, before it is done. A step is a few
microseconds at most: ten thousand take from a few milliseconds to a few tens; an ordinary
template takes a few dozen at most."""

MAX_DEPTH = 20
"""How deep calls may nest (a macro calling a macro, a recursive loop): stops a macro
calling itself cleanly, far below Python's recursion limit."""

MAX_SECONDS = 1.0
"""A safety net on wall-clock time, read every 256 steps (an ordinary template never reads
the clock), ten times and more what MAX_STEPS of the slowest steps take: the steps decide
(the same answer on every machine, loaded or not: the engine, batch runs, validation),
this only stops a kind of work they would have missed. Validation stops evaluating when
it goes over it, and reports nothing for it."""

MAX_VALIDATION_STEPS = 4 * MAX_STEPS
"""The work validation spends evaluating constant parts, for all the templates sharing one
ValidationBudget (a catalog's, or one template's by default); past it, what is left is
checked when it renders."""

MAX_INT_BITS = 1024
"""The largest integer `*` or `**` may make (about 300 digits)."""

MAX_NESTING = 32
"""How deep a template's parts may lie inside one another: tags in tags (each `elif`
counts as one more: Python nests them), and in an expression brackets, filters,
operators, calls, lists and conditions. Jinja compiles a template to Python, whose own
limits are lower than they look (200 parentheses in one expression, 100 levels of
indentation), and Jinja's parser recurses a dozen times for each bracket: past them,
compiling failed with a SyntaxError or a RecursionError at deployment, and validation
failed with the RecursionError (a design API answer 500). Brackets are counted from the
template's tokens and the rest from its syntax tree, neither by recursing, so the answer
does not depend on how deep the caller's stack already is. An ordinary template nests
under ten."""

MAX_LOOPS = 10
"""How many `{% for %}` loops may lie inside one another: Python compiles at most 20
nested loops in one function (a SyntaxError at 21)."""

_CLOCK_EVERY = 256  # steps between two readings of the clock
_CHARS_PER_STEP = 6  # one step per 2**6 = 64 characters or items built
_ITEMS_PER_STEP = 5  # one step per 2**5 = 32 items compared (in, ==, count(), …)
_MAX_NESTING = 100  # lists in lists a printed value may hold


class TemplateLimitError(TemplateRuntimeError):
    """A template went over one of the limits above, at validation or render time."""


class _OutOfTime(TemplateLimitError):
    """MAX_SECONDS: the safety net, which validation does not report."""


def _over_output(what: str, size: int, unit: str = "characters") -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would be {size:,} {unit}, over the output limit of {MAX_OUTPUT:,} (MAX_OUTPUT)"
    )


class _Budget:
    """What one render has left; shared by every context the render derives."""

    __slots__ = ("check_at", "depth", "started", "steps")

    def __init__(self, steps: int = MAX_STEPS, started: float | None = None) -> None:
        self.steps = steps
        self.check_at = steps - _CLOCK_EVERY
        self.depth = 0
        self.started = time.monotonic() if started is None else started

    def spend(self, steps: int) -> None:
        self.steps -= steps
        if self.steps < self.check_at:
            self.checkpoint()

    def checkpoint(self) -> None:
        if self.steps < 0:
            raise TemplateLimitError(
                f"the template took more than {MAX_STEPS:,} steps of work (loop iterations, "
                f"calls, filters, characters built), the work limit (MAX_STEPS)"
            )
        if time.monotonic() - self.started > MAX_SECONDS:
            raise _OutOfTime(
                f"the template ran for more than {MAX_SECONDS:g} s, the time limit (MAX_SECONDS)"
            )
        self.check_at = self.steps - _CLOCK_EVERY


class _BoundedContext(Context):
    """A render's context; its budget is made when the render first spends (a template
    that only prints short values never does)."""

    budget: _Budget | None = None

    def derived(self, locals: dict[str, Any] | None = None) -> Context:
        context = super().derived(locals)
        cast(_BoundedContext, context).budget = _budget(self)  # one budget per render
        return context


def _budget(context: Context) -> _Budget:
    ctx = cast(_BoundedContext, context)
    budget = ctx.budget
    if budget is None:
        budget = ctx.budget = _Budget()
    return budget


def _counted(budget: _Budget, items: Iterable[Any], steps: int = 1) -> Iterator[Any]:
    """Items handed on lazily, each charged `steps` as it is taken (the clock read every so
    often): a chain of lazy filters costs a step per item and filter, whatever consumes it
    (a filter, a loop, `in`, a method)."""
    for item in items:
        budget.steps -= steps
        if budget.steps < budget.check_at:
            budget.checkpoint()
        yield item


_COUNTED = _counted.__code__  # a generator of this code is charged already


def _work(context: Context, what: str, steps: int) -> None:
    """Charge work about to be done; more than is left: refused before it is done, saying
    what would have taken it."""
    budget = _budget(context)
    if steps > budget.steps > 0:
        left, budget.steps = budget.steps, budget.steps - steps
        raise TemplateLimitError(
            f"{what} would take {steps:,} steps of work, more than the {left:,} left of the "
            f"{MAX_STEPS:,} a render may take, the work limit (MAX_STEPS)"
        )
    budget.spend(steps)


def _built(context: Context, what: str, size: int, unit: str = "characters") -> None:
    """Charge for something of `size` built (or about to be); over the output limit: refused."""
    if size > MAX_OUTPUT:
        raise _over_output(what, size, unit)
    if size >> _CHARS_PER_STEP:
        _budget(context).spend(size >> _CHARS_PER_STEP)


def _text_size(value: Any, context: Context | None = None, indent: int = 0) -> int:
    """About how long str(value) (or its JSON) is, found without building it.

    Containers are walked (a list holding the same list twice is counted twice: that is
    what printing it costs), each item visited charged a step to `context`'s budget; the
    walk stops once the size is over MAX_OUTPUT or the items over the steps left. `indent`:
    per nesting level and item, as JSON's.
    """
    left = MAX_STEPS if context is None else _budget(context).steps
    total = visited = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth > _MAX_NESTING:  # str() or JSON would fail on Python's recursion limit
            raise TemplateLimitError(f"a value nested more than {_MAX_NESTING} deep")
        visited += 1
        total += 2 + indent * depth
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item)
            if total <= MAX_OUTPUT:
                depth += 1
                for x in item:
                    push((x, depth))
        elif isinstance(item, (Mapping, Namespace)):
            mapping = (
                cast(Mapping[Any, Any], object.__getattribute__(item, "_Namespace__attrs"))
                if isinstance(item, Namespace)
                else item
            )
            total += 4 * len(mapping)
            if total <= MAX_OUTPUT:
                depth += 1
                for key, x in mapping.items():
                    push((key, depth))
                    push((x, depth))
        elif isinstance(item, int):
            total += item.bit_length() // 3
        elif not isinstance(item, Undefined):
            total += 30  # a float, None, a macro's or an object's short repr
        if total > MAX_OUTPUT or visited > left:
            break
    if context is not None and visited > 1:
        _budget(context).spend(visited)
    return total


def _pprint_steps(value: Any, left: int) -> int:
    """pformat's work, found without doing it (and no further than `left`): it formats each
    item again for every list or mapping it is in (trying each on one line first), two
    steps a time, and cuts a long string into lines, a step per 4 characters."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack and total <= left:
        item, depth = pop()
        total += 2 * depth
        if isinstance(item, str):
            total += len(item) >> 2
        elif isinstance(item, (list, tuple, set, frozenset)):
            for x in item:
                push((x, depth + 1))
        elif isinstance(item, Mapping):
            for key, x in item.items():
                push((key, depth + 1))
                push((x, depth + 1))
    return total


# -- checks made before an operation builds anything -------------------------------------


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_MEASURED = (str, bytes, list, tuple, dict)  # what a comparison may read at length
_SEARCH = frozenset({"in", "notin"})
_SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="} | {
    "in": "in",
    "notin": "not in",
}


def _compare_steps(op: str, left: Any, right: Any) -> int:
    """What `left op right` reads: for `in`, a search of the text or a comparison per item
    of the list; otherwise the shorter of two strings, lists or mappings."""
    if op in _SEARCH:
        if isinstance(right, (str, bytes)):
            return _search_steps(len(right), len(left)) if isinstance(left, (str, bytes)) else 0
        if isinstance(right, (list, tuple)):
            return len(right) >> _ITEMS_PER_STEP
        return 0  # a mapping, a range: looked up
    if isinstance(left, (str, bytes)):
        if isinstance(right, (str, bytes)):
            return min(len(left), len(right)) >> _CHARS_PER_STEP
    elif isinstance(left, (list, tuple, dict)) and isinstance(right, (list, tuple, dict)):
        return min(len(left), len(right)) >> _ITEMS_PER_STEP
    return 0


_TESTED = {  # the tests that compare, and the comparison each makes
    **dict.fromkeys(("==", "eq", "equalto"), "eq"),
    **dict.fromkeys(("!=", "ne"), "ne"),
    **dict.fromkeys((">", "gt", "greaterthan"), "gt"),
    **dict.fromkeys((">=", "ge"), "gteq"),
    **dict.fromkeys(("<", "lt", "lessthan"), "lt"),
    **dict.fromkeys(("<=", "le"), "lteq"),
    "in": "in",
}


def _charged_test(name: str, test: Callable[..., Any]) -> Callable[..., Any]:
    """A test charged for what it reads (`is in`, `is lower`, `is eq`, …)."""
    op = _TESTED.get(name)
    if op is None:  # lower, upper: every character

        @pass_context
        def reads(context: Context, value: Any) -> Any:
            if isinstance(value, str) and len(value) >> _CHARS_PER_STEP:
                _work(context, f"the {name} test", len(value) >> _CHARS_PER_STEP)
            return test(value)

        return reads

    @pass_context
    def compares(context: Context, value: Any, other: Any) -> Any:
        steps = _compare_steps(op, value, other)
        if steps:
            _work(context, f"the {name} test", steps)
        return test(value, other)

    return compares


def _checked_width(what: str, width: Any) -> None:
    if isinstance(width, int) and width > MAX_OUTPUT:
        raise _over_output(what, width)


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?.", re.S)


def _printf_padding(fmt: str) -> tuple[int, bool]:
    """The widths and precisions `fmt % …` asks for, and whether one is `*` (an argument)."""
    padding, star = 0, False
    for numbers in _PRINTF_SPEC.findall(fmt):
        for number in numbers:
            if number == "*":
                star = True
            elif number:
                padding += int(number[:18])  # 18 digits: over any limit already
    return padding, star


_printf_padding_of_short = functools.lru_cache(maxsize=1024)(_printf_padding)  # most formats


def _checked_printf(context: Context, what: str, fmt: str, args: Any) -> None:
    """`fmt % args`: the widths and precisions it asks for, and the arguments it prints."""
    conversions = fmt.count("%")
    if not conversions:
        return
    if conversions > 16:  # a step per conversion: each is read in Python
        _budget(context).spend(conversions)
    values = args if type(args) is tuple else args.values() if type(args) is dict else (args,)
    padding, star = (_printf_padding_of_short if len(fmt) <= 64 else _printf_padding)(fmt)
    if star:  # a width taken from the arguments: count every integer
        padding += sum(abs(a) for a in values if isinstance(a, int))
    if padding > MAX_OUTPUT:
        raise _over_output(f"{what} padding", padding)
    size = len(fmt) + padding
    for value in values:
        if isinstance(value, str):
            size += len(value)
        elif not (value is None or isinstance(value, (int, float, Undefined))):
            size += _text_size(value, context)
    if size > MAX_OUTPUT:
        raise _over_output(what, size)


def _measured_arguments(
    context: Context, what: str, args: Iterable[Any], kwargs: Mapping[str, Any]
) -> None:
    """Arguments a call may turn into text (a filter's `replace(old, new)`, join's `d`, a
    Markup method escaping its arguments): a list or mapping too long to print is refused."""
    for value in (*args, *kwargs.values()):
        if not (value is None or isinstance(value, (str, int, float, Undefined))):
            size = _text_size(value, context)
            if size > MAX_OUTPUT:
                raise _over_output(f"an argument of {what} as text", size)


def _checked_replace(what: str, s: str, old: str, new: str, count: Any) -> None:
    n = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    size = len(s) + n * (len(new) - len(old))
    if size > MAX_OUTPUT:
        raise _over_output(what, size)


def _checked_lines(what: str, lines: int, extra: int) -> None:
    if lines * extra > MAX_OUTPUT:
        raise _over_output(what, lines * extra)


def _checked_join(context: Context, what: str, sep: str | bytes, items: list[Any]) -> None:
    size = len(sep) * max(len(items) - 1, 0)
    for item in items:
        size += len(item) if isinstance(item, (str, bytes)) else _text_size(item, context)
        if size > MAX_OUTPUT:
            break
    _built(context, what, size)


_MULTIPLYING_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join", "translate"}
)
# Methods that search their string for an argument: CPython compares a short needle (under
# 100 characters), or any in a short string (under 2,500), naively: up to a comparison per
# character of it at every position.
_SEARCHING = frozenset(
    {"count", "find", "index", "rfind", "rindex", "split", "rsplit", "partition"}
    | {"rpartition", "replace"}
)
_STRIPPING = frozenset({"strip", "lstrip", "rstrip"})  # each character looked up in the argument
_COMPARISONS_PER_STEP = 11  # one step per 2**11 characters compared (a search's worst case)


def _search_steps(n: int, m: int) -> int:
    """Steps to search n characters for a needle of m: reading both, and the worst case of
    CPython's search."""
    if m < 2:
        return (n + m) >> _CHARS_PER_STEP
    naive = max(n - m + 1, 0) * (m if n < 2500 else min(m, 100))
    return ((n + m) >> _CHARS_PER_STEP) + (naive >> _COMPARISONS_PER_STEP)


def _method_steps(
    owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> int:
    """The work of a str (or bytes) method: a step per 64 characters it reads, and what a
    search or a strip may compare; a Python codec (punycode, idna), a step a character."""
    n = len(owner)
    m = 0
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, (str, bytes)) and len(arg) > m:
            m = len(arg)
    steps = _search_steps(n, m) if name in _SEARCHING else (n + m) >> _CHARS_PER_STEP
    if name in _STRIPPING and m > 1:
        steps += (n * m) >> _COMPARISONS_PER_STEP
    elif isinstance(owner, Markup):  # its methods run Python for every part, tag or entity
        if name in ("split", "rsplit", "splitlines"):
            steps += len(getattr(str, name)(owner, *args, **kwargs))
        elif name == "striptags":
            steps += owner.count("<") + 2 * owner.count("&")
        elif name == "unescape":
            steps += 2 * owner.count("&")
    elif name in ("encode", "decode"):
        codec = str(args[0] if args else kwargs.get("encoding", "")).lower()
        if "puny" in codec or "idna" in codec:
            steps += n
    return steps


def _translated_size(context: Context, owner: str, table: Any) -> int:
    """How long owner.translate(table) would be, found without building it: each character
    present looked up as translate looks it up (a step each), whatever the table (a mapping,
    a list, a tuple, a string)."""
    present = set(owner)
    _work(context, "str.translate()", len(present))
    longer: list[tuple[str, int]] = []  # the characters replaced by more than one
    for char in present:
        try:
            replacement = table[ord(char)]
        except LookupError:  # translate leaves the character
            continue
        if isinstance(replacement, str) and len(replacement) > 1:
            longer.append((char, len(replacement) - 1))
    size = len(owner)
    bound = size * (1 + max((extra for _, extra in longer), default=0))
    if bound <= MAX_OUTPUT:
        return bound  # within the limit however many of them there are
    _work(context, "str.translate()", len(longer) * (size >> _CHARS_PER_STEP))  # one by one
    for char, extra in longer:
        size += owner.count(char) * extra
        if size > MAX_OUTPUT:
            break
    return size


def _method_args(
    context: Context, owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: Any
) -> tuple[Any, ...]:
    """Check a call of a str (or bytes) method that can multiply a size; the arguments to
    call it with (join's iterable is read into a list to be measured)."""
    if name not in _MULTIPLYING_METHODS:
        return args
    what = f"{type(owner).__name__}.{name}()"
    if name in ("center", "ljust", "rjust", "zfill"):
        _checked_width(what, args[0] if args else kwargs.get("width"))
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            _checked_lines(what, tabs, tabsize)
    elif name == "replace" and len(args) >= 2:
        if isinstance(owner, str) and isinstance(args[0], str) and isinstance(args[1], str):
            _checked_replace(what, owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        elif isinstance(owner, bytes) and isinstance(args[0], bytes) and isinstance(args[1], bytes):
            _checked_lines(what, owner.count(args[0]) + 1, len(args[1]))
    elif name == "join" and args:
        items = list(args[0])
        _checked_join(context, what, owner, items)
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(owner, str) and owner:
        size = _translated_size(context, owner, args[0])
        if size > MAX_OUTPUT:
            raise _over_output(what, size)
    return args


class _BoundedFormatting(Formatter):
    """str.format in the sandbox: widths and precisions bounded, the result too."""

    left = MAX_OUTPUT

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self.left = MAX_OUTPUT
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        for number in re.findall(r"\d+", format_spec):
            if int(number[:18]) > MAX_OUTPUT:  # 18 digits: over any limit already
                raise _over_output("str.format() padding", int(number[:18]))
        if not (isinstance(value, (str, int, float, Undefined)) or value is None):
            size = _text_size(value)
            if size > MAX_OUTPUT:
                raise _over_output("str.format()", size)
        text: str = super().format_field(value, format_spec)
        self.left -= len(text)
        if self.left < 0:
            raise _over_output("str.format()", MAX_OUTPUT - self.left)
        return text


class _BoundedFormatter(_BoundedFormatting, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFormatting, SandboxedEscapeFormatter):
    pass


class _Format:
    """A string's format or format_map method as the sandbox wraps it (its formatter sees
    every attribute it reads), formatting within the limits; charged a step a field."""

    __slots__ = ("fields", "formatter", "is_map", "owner")

    def __init__(self, environment: ContentEnvironment, owner: str, is_map: bool) -> None:
        self.owner = owner
        self.is_map = is_map
        self.fields = owner.count("{")
        self.formatter: SandboxedFormatter = (
            _BoundedEscapeFormatter(environment, escape=owner.escape)
            if isinstance(owner, Markup)
            else _BoundedFormatter(environment)
        )

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if self.is_map:
            if kwargs:
                raise TypeError("format_map() takes no keyword arguments")
            if len(args) != 1:
                raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
            kwargs, args = args[0], ()
        return type(self.owner)(self.formatter.vformat(self.owner, args, kwargs))


# -- filters and globals ------------------------------------------------------------------

# How a filter's value is charged: most filters turn it into text (a container is measured
# as printed) or walk it at C speed (a step per 64 items or characters); these walk it
# without printing it; of those, the first set run Python code for each item (a key, a
# test, a filter: a step per item) and the second take the same time whatever its size and
# return it or a part of it: they are left as they are (what calls them is charged). A
# value that is an iterator (a lazy filter's result) is charged an item at a time, as it
# is consumed; a lazy filter's result is charged again as it is consumed.
_WALKING = frozenset(
    {
        *("batch", "dictsort", "groupby", "items", "join", "map", "max", "min", "reject"),
        *("rejectattr", "select", "selectattr", "slice", "sort", "sum", "unique"),
    }
)
_CONSTANT_TIME = frozenset(
    {"abs", "attr", "count", "d", "default", "first", "float", "last", "length"}
    | {"random", "round"}
)
_ITERATING = _WALKING | _CONSTANT_TIME | {"list", "reverse"}
_LAZY = frozenset(  # what these return is an iterator, worked out as it is consumed
    {"batch", "items", "map", "reject", "rejectattr", "reverse", "select", "selectattr"}
    | {"slice", "unique"}
)
# The argument naming an attribute a filter reads of each item (its position, its keyword)
# and how many times; reading one of an object that is not a mapping goes through the
# sandbox's checks, a few microseconds: two steps a read.
_ATTRIBUTES: dict[str, tuple[int, str, int]] = {
    "groupby": (0, "attribute", 3),  # to sort, to group, to name the group
    "join": (1, "attribute", 1),
    "map": (-1, "attribute", 1),
    "max": (1, "attribute", 1),
    "min": (1, "attribute", 1),
    "rejectattr": (0, "", 1),
    "selectattr": (0, "", 1),
    "sort": (2, "attribute", 1),
    "sum": (0, "attribute", 1),
    "unique": (1, "attribute", 1),
}
_ITERATE = "overture iterate"  # wraps every loop's iterable; no template can name it


def _steps_per_item(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What a walking filter costs an item: a step, and two per attribute it reads of it (a
    dotted name is read a part at a time)."""
    index, key, times = _ATTRIBUTES[name]
    attribute = args[index] if 0 <= index < len(args) else kwargs.get(key) if key else None
    if attribute is None:
        return 1
    parts = attribute.count(".") + 1 if isinstance(attribute, str) else 1
    return 1 + 2 * times * parts


def _words(s: str) -> int:
    return len(s.split())


def _filter_checks(  # one branch per filter that can multiply a size
    context: Context, name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """Check the arguments of a filter that can multiply a size; what to call it with."""
    what = f"the {name} filter's result"

    def arg(i: int, key: str, default: Any) -> Any:
        return args[i] if len(args) > i else kwargs.get(key, default)

    if name == "center":
        _checked_width(what, arg(0, "width", 80))
    elif name == "indent":
        width = arg(0, "width", 4)
        extra = width if isinstance(width, int) else len(str(width))
        lines = str(value).count("\n") + 1
        _checked_lines(what, lines, extra)
        _work(context, f"the {name} filter", lines >> 2)  # Python for every line
    elif name == "wordwrap":
        s = str(value)
        width = arg(0, "width", 79)
        width = max(width, 1) if isinstance(width, int) else 1
        wrap = arg(2, "wrapstring", None) or context.environment.newline_sequence
        words = s.split()
        _checked_lines(what, len(words) + len(s) // width + 1, len(str(wrap)))
        # textwrap runs Python for every few characters (about a microsecond for four) and
        # every line, and cuts a word longer than the width a line at a time, copying its
        # rest each time: n²/2w characters for a word of n (a step per 1,024)
        longest = max(map(len, words), default=0)
        cut = longest * len(s) // (2 * width) if longest > width else 0
        _work(context, f"the {name} filter", (len(s) >> 2) + len(s) // width + (cut >> 10))
    elif name == "replace" and len(args) >= 2:
        count = arg(2, "count", None)
        _checked_replace(what, str(value), str(args[0]), str(args[1]), count)
    elif name == "join":
        attribute = arg(1, "attribute", None)
        items = list(value)
        if attribute is not None:
            get = make_attrgetter(context.environment, attribute)
            items = [get(item) for item in items]
        _checked_join(context, what, str(arg(0, "d", "")), items)
        return items, args[:1], {k: v for k, v in kwargs.items() if k == "d"}
    elif name in ("batch", "slice"):
        _checked_width(what, arg(0, "linecount" if name == "batch" else "slices", 0))
    elif name == "urlize":
        s = str(value)
        count = _words(s)
        extra = len(str(arg(2, "target", None) or "")) + len(str(arg(3, "rel", None) or ""))
        _checked_lines(what, count + 1, extra)
        # a few regular expressions and Python lines a word (and the space after it), and a
        # word's parentheses balanced against what follows it, a copy each
        opens = s.count("(") + s.count("<") + s.count("&lt;")
        closes = s.count(")") + s.count(">") + s.count("&gt;")
        balancing = min(opens, closes) * len(s)
        _work(context, f"the {name} filter", 3 * count + (len(s) >> 3) + (balancing >> 10))
    elif name == "title":  # Python for every word, and for every separator
        s = str(value)
        separators = sum(map(s.count, "-({[<"))
        _work(context, f"the {name} filter", _words(s) + separators)
    elif name == "pprint":
        _work(context, f"the {name} filter", _pprint_steps(value, _budget(context).steps))
    elif name == "wordcount":  # a match made for every word
        _work(context, f"the {name} filter", len(str(value)) >> 3)
    elif name == "striptags":  # Python for every tag and every entity
        s = str(value)
        _work(context, f"the {name} filter", s.count("<") + 2 * s.count("&"))
    elif name == "int" and isinstance(value, str) and len(value) > 64:
        digits = min(len(value), 5000)  # Python converts no more (int_max_str_digits)
        _work(context, f"the {name} filter", (digits * digits) >> 14)  # converting: quadratic
    elif name == "tojson":
        indent = arg(0, "indent", None)
        if indent is not None:
            step = indent if isinstance(indent, int) else len(str(indent))
            _built(context, what, _text_size(value, context, min(step, MAX_OUTPUT)))
    elif name == "sum" and not isinstance(arg(1, "start", 0), (int, float)):
        # adding lists or tuples copies the total so far each time: quadratic work
        attribute = arg(0, "attribute", None)
        items = list(value)
        if attribute is not None:
            get = make_attrgetter(context.environment, attribute)
            items = [get(item) for item in items]
        total = work = 0
        for item in items:
            total += len(item) if isinstance(item, (str, list, tuple)) else 1
            work += total
            if total > MAX_OUTPUT or work >> _CHARS_PER_STEP > MAX_STEPS:
                break
        _built(context, what, total, "items")
        _budget(context).spend(work >> _CHARS_PER_STEP)
        return items, (), {"start": arg(1, "start", 0)}
    return value, args, kwargs


_CHECKED = frozenset(
    {"center", "indent", "wordwrap", "replace", "join", "batch", "slice", "urlize", "tojson"}
    | {"sum", "title", "striptags", "int", "wordcount", "pprint"}
)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, charged to the render's budget, its result's size checked (inlined: a
    filter call is the commonest thing a template does)."""
    pass_arg = _PassArg.from_obj(func)
    prints = name not in _ITERATING
    shift = 0 if name in _WALKING else _CHARS_PER_STEP  # steps: one per 2**shift items
    checked = name in _CHECKED
    lazy = name in _LAZY
    reads = name in _ATTRIBUTES
    what = f"the {name} filter's result"

    if name == "format":  # common, and cheap to check: on its own

        @pass_context
        def bounded_format(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(value, str):
                _built(context, "the format filter's format", _text_size(value, context))
            _checked_printf(context, what, str(value), kwargs or args)
            result = func(value, *args, **kwargs)
            if len(result) >> _CHARS_PER_STEP:
                _built(context, what, len(result))
            return result

        return bounded_format

    @pass_context
    def bounded(context: _BoundedContext, value: Any, *args: Any, **kwargs: Any) -> Any:
        # a filter over a short string costs nothing: what repeats it (a loop, a call, a
        # map) is charged already, and so most renders never make a budget
        if isinstance(value, str):
            if len(value) >> shift:
                _budget(context).spend(len(value) >> shift)
        elif prints:
            if not (value is None or isinstance(value, (int, float, Undefined))):
                size = _text_size(value, context)  # measured before it is turned into text
                if size > MAX_OUTPUT:
                    raise _over_output(f"the {name} filter's text of its value", size)
                _budget(context).spend(size >> _CHARS_PER_STEP)
        else:
            steps = _steps_per_item(name, args, kwargs) if reads and (args or kwargs) else 1
            if type(value) is GeneratorType:  # charged as it is consumed
                if value.gi_code is not _COUNTED:
                    value = _counted(_budget(context), value, steps)
                elif steps > 1:  # a lazy filter's result: charged a step an item already
                    value = _counted(_budget(context), value, steps - 1)
            elif isinstance(value, (list, tuple, dict, Sized)):
                if (len(value) * steps) >> shift:
                    _budget(context).spend((len(value) * steps) >> shift)
            elif isinstance(value, Iterator):  # reversed(), a loop: charged as consumed
                value = _counted(_budget(context), value, steps)
        if args or kwargs:
            _measured_arguments(context, f"the {name} filter", args, kwargs)
        if checked:
            value, args, kwargs = _filter_checks(context, name, value, args, kwargs)
        if pass_arg is None:
            result = func(value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        else:
            result = func(context.environment, value, *args, **kwargs)
        if isinstance(result, (str, list, tuple, dict)):
            if len(result) >> _CHARS_PER_STEP:
                _built(context, what, len(result), _unit(result))
        elif lazy and (type(result) is GeneratorType or isinstance(result, Iterator)):
            return _counted(_budget(context), result)  # each item charged as it is taken
        return result

    return bounded


@pass_context
def _iterate(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """A loop's items, each charged one step."""
    return _counted(_budget(context), iterable)


@pass_context
def _printed(context: Context, value: Any) -> Any:
    """Every printed value (`{{ … }}`, in macros and blocks too) is charged by its length,
    and a list or mapping too long to print is refused before it is turned into text."""
    if isinstance(value, str):
        if len(value) >> _CHARS_PER_STEP:
            _built(context, "a printed value", len(value))
    elif not (value is None or isinstance(value, (int, float, Undefined))):
        _built(context, "a printed value", _text_size(value, context))
    return value


def _bounded_join(parts: Iterable[str]) -> str:
    """What macros, `set` blocks and `filter` blocks collect (Jinja's environment.concat)."""
    text = "".join(parts)
    if len(text) > MAX_OUTPUT:
        raise _over_output("a block's or macro's text", len(text))
    return text


def _range(*args: int) -> range:
    """range(), no longer than a render's steps (a loop over it takes one step an item)."""
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = MAX_STEPS + 1
    if size > MAX_STEPS:
        raise TemplateLimitError(
            f"range() of {size:,} numbers: a render takes at most {MAX_STEPS:,} steps, "
            f"the work limit (MAX_STEPS)"
        )
    return numbers


@pass_context
def _lipsum(context: Context, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's lipsum(), no longer than MAX_OUTPUT (about 8 characters a word), a step a
    word (each is drawn in Python)."""
    words = int(n) * int(max)
    if words * 8 > MAX_OUTPUT:
        raise _over_output("lipsum()", words * 8)
    if words > 0:
        _work(context, "lipsum()", words)
    return generate_lorem_ipsum(n, html, min, max)


# -- the environment ---------------------------------------------------------------------


_NOT_CONSTANT = object()


def _constant(node: nodes.Node, frame: Frame) -> Any:
    """The node's value if the source gives it (no longer than the source), else
    _NOT_CONSTANT."""
    try:
        return cast(nodes.Expr, node).as_const(frame.eval_ctx)
    except nodes.Impossible:
        return _NOT_CONSTANT


def _bounded_by_source(node: nodes.Compare, frame: Frame) -> bool:
    """A comparison whose work the source bounds: `x == 'a'`, `n > 1` (a comparison reads
    no more than its shorter side), `x in ['a', 'b']` (a search, no more than what it
    searches). The commonest, left as Python compiles them."""
    operand = node.ops[0]
    if operand.op in _SEARCH:
        return _constant(operand.expr, frame) is not _NOT_CONSTANT
    return (
        _constant(node.expr, frame) is not _NOT_CONSTANT
        or _constant(operand.expr, frame) is not _NOT_CONSTANT
    )


def _short_slice(index: nodes.Slice, frame: Frame) -> bool:
    """`s[:3]`, `s[2:5]`, `s[-3:]`: a slice the source bounds to a few items."""
    if index.step is not None:
        return False
    start, stop = (0 if x is None else _constant(x, frame) for x in (index.start, index.stop))
    short = 1 << _CHARS_PER_STEP
    if index.stop is None:  # s[-3:]
        return type(start) is int and -short <= start < 0
    if type(start) is not int or type(stop) is not int:
        return False
    return 0 <= start <= stop <= start + short or -short <= start <= stop <= 0  # s[-3:-1]


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with `~` (concatenation) measured before it joins, the lists,
    tuples and mappings a template writes measured once built (unless constant), and
    comparisons and slices charged for what they read."""

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._built(super().visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # unpacking: `{% for a, b in … %}`
            super().visit_Tuple(node, frame)
        else:
            self._built(super().visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._built(super().visit_Dict, node, frame)

    def _built(self, visit: Callable[[Any, Frame], None], node: nodes.Expr, frame: Frame) -> None:
        try:
            node.as_const(frame.eval_ctx)  # written in the source: no bigger than it
        except nodes.Impossible:
            self.write("environment.built(context, ")
            visit(node, frame)
            self.write(")")
        else:
            visit(node, frame)

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        if len(node.ops) == 1 and _bounded_by_source(node, frame):
            super().visit_Compare(node, frame)  # Python's own: the constant bounds the work
            return
        if len(node.ops) == 1:
            self.write(f"environment.compare(context, {node.ops[0].op!r}, ")
            self.visit(node.expr, frame)
            self.write(", ")
            self.visit(node.ops[0].expr, frame)
        else:  # a chain: the operands after the first evaluated only if needed, as Python
            self.write("environment.compare_chain(context, ")
            self.visit(node.expr, frame)
            for operand in node.ops:
                self.write(f", {operand.op!r}, lambda: ")
                self.visit(operand.expr, frame)
        self.write(")")

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice) or _short_slice(node.arg, frame):
            super().visit_Getitem(node, frame)  # an item, or `s[:3]`: Python's own
            return
        self.write("environment.sliced(context, ")
        self.visit(node.node, frame)
        self.write(", slice(")
        for i, part in enumerate((node.arg.start, node.arg.stop, node.arg.step)):
            self.write(", " if i else "")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write("))")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_concat(context, {join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class ContentEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the cost of a template bounded (the limits above)."""

    # Intercepted operators are also no longer folded into constants at compile time.
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    context_class = _BoundedContext
    code_generator_class = _CodeGenerator

    def __init__(self, html: bool) -> None:
        super().__init__(autoescape=html, keep_trailing_newline=True, finalize=_printed)
        self.concat = _bounded_join  # type: ignore[method-assign]
        self.filters = {
            name: f if name in _CONSTANT_TIME else _bounded_filter(name, f)
            for name, f in self.filters.items()
        }
        self.filters[_ITERATE] = _iterate
        for name in (*_TESTED, "lower", "upper"):
            test = cast(Callable[..., Any], self.tests[name])
            self.tests[name] = _charged_test(name, test)
        self.globals.update(range=_range, lipsum=_lipsum)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        for loop in source.find_all(nodes.For):  # every loop's items are counted
            counted = nodes.Filter(loop.iter, _ITERATE, [], [], None, None, lineno=loop.lineno)
            loop.iter = counted.set_environment(self)
        return super()._generate(source, name, filename, defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _built(context, "'+'", len(left) + len(right), _unit(left))
                result = self.binop_table["+"](left, right)
                if not isinstance(result, str):
                    _held(context, "'+'", result)
                return result
            return left + right
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                _checked_bits("'*'", left.bit_length() + right.bit_length())
            elif isinstance(right, int) and isinstance(left, (str, bytes, list, tuple)):
                _built(context, "'*'", len(left) * right, _unit(left))
                if isinstance(left, (list, tuple)):
                    _held(context, "'*'", left, right)
            elif isinstance(left, int) and isinstance(right, (str, bytes, list, tuple)):
                _built(context, "'*'", len(right) * left, _unit(right))
                if isinstance(right, (list, tuple)):
                    _held(context, "'*'", right, left)
            return left * right
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                _checked_bits("'**'", math.ceil(right * math.log2(abs(left))))
            return left**right
        if operator == "%" and isinstance(left, str):
            _checked_printf(context, "'%'", left, right)
            result = left % right
            _built(context, "'%'", len(result))
            return result
        return self.binop_table[operator](left, right)

    def compare(self, context: Context, op: str, left: Any, right: Any) -> Any:
        """`a == b`, `a in b`, …: what it reads charged first (numbers and the like, the
        commonest, read nothing)."""
        if isinstance(right, _MEASURED) and (op in _SEARCH or isinstance(left, _MEASURED)):
            steps = _compare_steps(op, left, right)
            if steps:
                _work(context, f"'{_SYMBOLS[op]}'", steps)
        return _COMPARE[op](left, right)

    def compare_chain(self, context: Context, left: Any, *ops: Any) -> Any:
        """`a < b < c`: as Python chains it (each operand evaluated once, and only until a
        comparison is false), each comparison charged."""
        result: Any = True
        for i in range(0, len(ops), 2):
            right = ops[i + 1]()
            result = self.compare(context, ops[i], left, right)
            if not result:
                return result
            left = right
        return result

    def sliced(self, context: Context, value: Any, index: slice) -> Any:
        """`s[a:b:c]` (Jinja slices without the environment): what it copies charged."""
        result = value[index]
        if isinstance(result, (str, bytes, list, tuple)) and len(result) >> _CHARS_PER_STEP:
            _budget(context).spend(len(result) >> _CHARS_PER_STEP)
        return result

    def built(self, context: Context, container: Any) -> Any:
        """A list, tuple or mapping the template wrote or a call returned, measured as text
        (items in items counted each time they appear): comparing or printing a list that
        holds another twice, itself holding another twice, … would cost that much."""
        _held(context, "a list or mapping built", container)
        return container

    def bounded_concat(
        self, context: Context, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]
    ) -> str:
        """`a ~ b`: the parts measured as text first, then joined as Jinja joins them."""
        size = 0
        for part in parts:
            if isinstance(part, str):
                size += len(part)
            elif isinstance(part, (int, float)) or part is None:
                size += 24
            else:
                size += _text_size(part, context)
        _built(context, "'~'", size)
        text = join(parts)
        if len(text) > MAX_OUTPUT:  # escaping made it longer
            raise _over_output("'~'", len(text))
        return text

    def call(
        __self,  # Jinja's signature: a call's keyword arguments may be named self
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        budget = _budget(__context)
        budget.spend(1)
        kind = type(__obj)
        if kind is BuiltinMethodType or kind is MethodType:
            owner = getattr(__obj, "__self__", None)
            if isinstance(owner, (str, bytes)):
                name = __obj.__name__
                steps = _method_steps(owner, name, args, kwargs)
                if steps:
                    _work(__context, f"{type(owner).__name__}.{name}()", steps)
                args = _method_args(__context, owner, name, args, kwargs)
                if isinstance(owner, Markup):  # its methods escape their arguments
                    _measured_arguments(__context, f"Markup.{name}()", args, kwargs)
            elif isinstance(owner, (list, tuple)) and len(owner) >> _ITEMS_PER_STEP:
                budget.spend(len(owner) >> _ITEMS_PER_STEP)  # count(), index(): compared
        elif kind is _Format:
            budget.spend(__obj.fields)
        elif isinstance(__obj, LoopContext) and args:  # a recursive loop: count its items
            args = (_iterate(__context, args[0]), *args[1:])
        if budget.depth >= MAX_DEPTH:
            raise TemplateLimitError(
                f"calls nested more than {MAX_DEPTH} deep (a macro calling itself?), the "
                f"depth limit (MAX_DEPTH)"
            )
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        if isinstance(result, (str, bytes, list, tuple, dict)):
            if len(result) >> _CHARS_PER_STEP:
                _built(__context, f"the result of {_name_of(__obj)}", len(result), _unit(result))
            if not isinstance(result, (str, bytes)):  # dict(a=x, b=x), namespace(…)
                __self.built(__context, result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """The sandbox's str.format, with a formatter that bounds widths and the result."""
        if not isinstance(value, (MethodType, BuiltinMethodType)) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        return _Format(self, owner, value.__name__ == "format_map")


def _held(context: Context, what: str, container: Any, times: int = 1) -> None:
    """The text the items of a list, tuple or mapping hold, `times` over: at most MAX_OUTPUT."""
    size = 0
    for item in container.values() if isinstance(container, dict) else container:
        if isinstance(item, str):
            size += len(item)
        elif not (item is None or isinstance(item, (int, float, Undefined))):
            size += _text_size(item, context)
        if size * times > MAX_OUTPUT:
            raise _over_output(what, size * times)


def _checked_bits(what: str, bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(
            f"{what} would make a number of about {bits:,} bits, over the limit of "
            f"{MAX_INT_BITS:,} (MAX_INT_BITS)"
        )


def _unit(value: Any) -> str:
    return (
        "characters" if isinstance(value, str) else "bytes" if isinstance(value, bytes) else "items"
    )


def _name_of(obj: Any) -> str:
    if isinstance(obj, Macro):
        return f"macro {obj.name}()"
    return f"{getattr(obj, '__name__', type(obj).__name__)}()"


@functools.cache
def environment(html: bool) -> ContentEnvironment:
    """The template environment for a placement (html: values are escaped)."""
    return ContentEnvironment(html)


def is_template(text: str) -> bool:
    """Whether text needs rendering at all (most content is static)."""
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    column: int
    message: str
    hint: str | None = None


class ValidationBudget:
    """The work validation may spend evaluating templates' constant parts: pass one to every
    check_template() of a catalog (or of an offer) and all of them share it, so validating
    costs at most MAX_VALIDATION_STEPS steps however many templates there are. Each constant
    expression is still evaluated with up to MAX_STEPS of its own, as a render would; once
    the budget is spent, what is left is not evaluated (the render's checks apply), and
    nothing is reported for it: what validation reports depends on the steps alone."""

    __slots__ = ("started", "steps")

    def __init__(self, steps: int = MAX_VALIDATION_STEPS) -> None:
        self.steps = steps
        self.started = time.monotonic()  # MAX_SECONDS: the safety net, for all of them


class _Spent(Exception):
    """The validation budget ran out: what is left is not evaluated."""


def check_template(
    text: str,
    fields: Mapping[str, frozenset[str] | None],
    budget: ValidationBudget | None = None,
) -> list[TemplateProblem]:
    """Problems in a template: syntax, unknown variables, unknown fields of a variable, and
    constant parts already over a limit (the same whatever the profile).

    `fields` maps each variable to the names it has (None: any name is accepted); `budget`:
    the work evaluating constant parts may take, shared with the other templates given it
    (by default, this template's own).
    """
    if not is_template(text):
        return []
    deepest, line = _brackets(text)
    if deepest > MAX_NESTING:
        return [
            _too_deep(
                line, f"{deepest} brackets inside one another, over {MAX_NESTING} (MAX_NESTING)"
            )
        ]
    try:
        tree = environment(False).parse(text)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno or 1, 1, f"template syntax: {exc.message}")]
    except RecursionError:  # Jinja's parser recurses for each bracket: (((…)))
        return [_too_deep(1, f"more than the parser can follow (MAX_NESTING: {MAX_NESTING})")]
    walked = _walk(tree)
    if isinstance(walked, TemplateProblem):
        return [walked]
    every = walked  # each check below reads this list (Jinja's find_all recurses)
    problems: list[TemplateProblem] = []
    for tag, kind in _NO_FILES:
        for reading in (n for n in every if isinstance(n, kind)):
            problems.append(
                TemplateProblem(
                    reading.lineno,
                    1,
                    f"{{% {tag} %}} is not available: offer content is one template, with no "
                    "other templates to read",
                    "write the text here, or a macro ({% macro name(…) %}) to use it twice",
                )
            )
    names = [n for n in every if isinstance(n, nodes.Name)]
    locals_ = {n.name for n in names if n.ctx in ("store", "param")}
    macros = {m.name for m in every if isinstance(m, nodes.Macro)}
    if macros:  # and what a macro's body may read of its call
        locals_ |= macros | {"caller", "varargs", "kwargs"}
    for name in names:
        if name.ctx != "load" or name.name in locals_ or name.name in fields:
            continue
        problems.append(
            TemplateProblem(
                name.lineno,
                1,
                f"unknown template variable {name.name!r}",
                suggest(name.name, list(fields)) or "variables: " + ", ".join(VARIABLES),
            )
        )
    for node in every:
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            continue
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name in fields):
            continue
        if isinstance(node, nodes.Getattr):
            attr = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            attr = node.arg.value
        else:
            continue
        known = fields[target.name]
        if known is not None and attr not in known:
            problems.append(
                TemplateProblem(
                    node.lineno,
                    1,
                    f"unknown field {target.name}.{attr}",
                    suggest(attr, sorted(known))
                    or f"{target.name} has: " + ", ".join(sorted(known)),
                )
            )
    limits = _StaticLimits(locals_ | set(fields), budget or ValidationBudget())
    return problems + limits.problems(tree, every)


_NO_FILES = (
    ("include", nodes.Include),
    ("extends", nodes.Extends),
    ("import", nodes.Import),
    ("from … import", nodes.FromImport),
)
_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")


def _brackets(text: str) -> tuple[int, int]:
    """How deep brackets nest inside the template's tags, and the line of the deepest
    (from Jinja's tokens: brackets in text, strings and comments do not count)."""
    depth = deepest = 0
    line = 1
    if sum(text.count(c) for c in _OPENING) <= MAX_NESTING:
        return 0, 1  # not that many in all (tags' own braces included): no need to lex
    try:
        for lineno, kind, value in environment(False).lex(text):
            if kind != "operator":
                continue
            if value in _OPENING:
                depth += 1
                if depth > deepest:
                    deepest, line = depth, lineno
            elif value in _CLOSING:
                depth -= 1
    except TemplateSyntaxError:
        pass  # the parser says what is wrong
    return deepest, line


def _walk(tree: nodes.Template) -> list[nodes.Node] | TemplateProblem:
    """Every node, in the order Jinja's find_all gives them (a parent before its children),
    or the first one nested past MAX_NESTING or MAX_LOOPS: found without recursing, so
    that the checks after it may recurse."""
    every: list[nodes.Node] = []
    stack: list[tuple[nodes.Node, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, loops = stack.pop()
        every.append(node)
        if isinstance(node, nodes.For):
            loops += 1
            if loops > MAX_LOOPS:
                return _too_deep(
                    node.lineno, f"{loops} loops inside one another, over {MAX_LOOPS} (MAX_LOOPS)"
                )
        if depth > MAX_NESTING:
            return _too_deep(node.lineno, f"{depth} levels, over {MAX_NESTING} (MAX_NESTING)")
        branches = {}  # Python nests each elif in an else: the k-th is k levels deeper
        if isinstance(node, nodes.If):
            branches = {id(branch): k for k, branch in enumerate(node.elif_, 1)}
        stack.extend(  # reversed: the first child is taken first
            (child, depth + 1 + branches.get(id(child), 0), loops)
            for child in reversed(list(node.iter_child_nodes()))
        )
    return every


def _too_deep(line: int, how: str) -> TemplateProblem:
    return TemplateProblem(
        line,
        1,
        f"template nested too deeply: {how}",
        "split it: give a part a name with {% set name = … %} and use the name, or write a "
        "macro ({% macro name(…) %}); see 'Template limits' in docs/catalog.md",
    )


# -- what validation sees of the limits ---------------------------------------------------


class _Unknown(Exception):
    """The value depends on the profile, the context or something not evaluated here."""


_LIMIT_HINT = "see 'Template limits' in docs/catalog.md"
_COSTLY = (nodes.BinExpr, nodes.Filter, nodes.Call, nodes.Concat)  # what may be over a limit


class _StaticLimits:
    """Evaluates a template's constant expressions under the render checks, and multiplies
    the lengths of nested loops over constants: what is over a limit for every profile."""

    def __init__(self, names: set[str], budget: ValidationBudget) -> None:
        self.env = environment(False)
        self.names = names  # variables and locals: never evaluated here
        self.budget = budget
        self.found: list[TemplateProblem] = []
        self.flags: dict[int, tuple[bool, bool]] = {}  # by id(node): costly, unknown
        self.opaque: set[int] = set()  # id(node): raised _Unknown once, will again

    def problems(self, tree: nodes.Template, every: list[nodes.Node]) -> list[TemplateProblem]:
        self.scan(every)
        # past the budget, or nested deeper than Python recurses: left to the render
        with contextlib.suppress(_Spent, RecursionError):
            self.visit(tree, 1)
        return self.found

    def scan(self, every: list[nodes.Node]) -> None:
        """For every node (`every`: parents before their children), whether it or a part
        of it is costly, and whether it reads a variable or a local: found in one pass
        (asking every node in turn would be quadratic in how deep they nest)."""
        flags = self.flags
        for node in reversed(every):
            costly = self.costly(node)
            unknown = isinstance(node, nodes.Name) and (
                node.name in self.names or node.name not in self.env.globals
            )
            for child in node.iter_child_nodes():
                child_costly, child_unknown = flags[id(child)]
                costly = costly or child_costly
                unknown = unknown or child_unknown
            flags[id(node)] = (costly, unknown)

    def add(self, node: nodes.Node, message: str) -> None:
        self.found.append(
            TemplateProblem(node.lineno, 1, f"template limit: {message}", _LIMIT_HINT)
        )

    def visit(self, node: nodes.Node, loops: int) -> None:
        if isinstance(node, nodes.Expr):
            self.expression(node, loops)
            return
        if isinstance(node, nodes.For):
            self.expression(cast(nodes.Expr, node.iter), loops)
            if node.test is not None:
                self.expression(cast(nodes.Expr, node.test), loops)
            try:
                count = len(self.evaluate(node.iter))
            except _Spent:
                raise
            except Exception:  # unknown, or already reported
                count = 1
            if loops * count > MAX_STEPS:
                self.add(
                    node,
                    f"these loops run {loops * count:,} times, more than the {MAX_STEPS:,} "
                    f"steps a render may take (MAX_STEPS)",
                )
                return
            for child in (*node.body, *node.else_):
                self.visit(child, loops * count)
            return
        for child in node.iter_child_nodes():
            self.visit(child, loops)

    def expression(self, node: nodes.Expr, loops: int) -> None:
        costly, unknown = self.flags[id(node)]
        if not costly:
            return  # nothing here builds or repeats anything
        partial = isinstance(node, nodes.Concat) or (
            isinstance(node, nodes.BinExpr) and node.operator == "%"
        )
        if unknown and not partial:
            for child in node.iter_child_nodes():
                self.visit(child, loops)
            return
        try:
            self.evaluate(node)
        except TemplateLimitError as exc:
            self.add(node, str(exc))
        except _Unknown:
            for child in node.iter_child_nodes():
                self.visit(child, loops)
        except _Spent:
            raise
        except Exception:  # a type error and the like: the render reports it
            return

    def costly(self, node: nodes.Node) -> bool:
        if isinstance(node, nodes.BinExpr):
            return node.operator in self.env.intercepted_binops
        return isinstance(node, _COSTLY)

    def evaluate(self, node: nodes.Node) -> Any:
        """The node's value, evaluated under the render's checks with MAX_STEPS or what is
        left of the validation budget, whichever is less, and charged to it. Out of steps
        with less than MAX_STEPS to start with, or out of time: _Spent, not a problem."""
        ctx = self.env.context_class(self.env, {}, None, {})
        given = min(MAX_STEPS, max(self.budget.steps, 0))
        budget = ctx.budget = _Budget(given, self.budget.started)
        try:
            return self.value(node, ctx)
        except _OutOfTime:
            self.budget.steps = 0
            raise _Spent from None
        except TemplateLimitError:
            if budget.steps < 0 and given < MAX_STEPS:
                raise _Spent from None
            raise
        finally:  # a charge refused before the work is done costs no more than was given
            self.budget.steps -= min(given - budget.steps, given)

    def value(self, node: nodes.Node, ctx: Context) -> Any:
        if id(node) in self.opaque:
            raise _Unknown
        try:
            return self._value(node, ctx)
        except _Unknown:
            self.opaque.add(id(node))  # each node tried once: linear however deep they nest
            raise

    def _value(self, node: nodes.Node, ctx: Context) -> Any:
        env = self.env
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.value(x, ctx) for x in node.items]
            return items if isinstance(node, nodes.List) else tuple(items)
        if isinstance(node, nodes.BinExpr):
            left = self.value(node.left, ctx)
            try:
                right = self.value(node.right, ctx)
            except _Unknown:  # `'%99999d' % profile.x` pads whatever x is
                if node.operator == "%" and isinstance(left, str):
                    _checked_printf(ctx, "'%'", left, ())
                raise
            if node.operator in env.intercepted_binops:
                return env.call_binop(ctx, node.operator, left, right)
            return env.binop_table[node.operator](left, right)
        if isinstance(node, nodes.UnaryExpr):
            return env.unop_table[node.operator](self.value(node.node, ctx))
        if isinstance(node, nodes.Concat):
            parts, unknown = [], False
            for x in node.nodes:
                try:
                    parts.append(self.value(x, ctx))
                except _Unknown:  # its known parts may already be too long
                    unknown = True
            if unknown:
                known = sum(len(p) if isinstance(p, str) else _text_size(p) for p in parts)
                if known > MAX_OUTPUT:
                    raise _over_output("'~'", known)
                raise _Unknown
            return env.bounded_concat(ctx, str_join, tuple(parts))
        if isinstance(node, nodes.Name):
            if node.name in self.names or node.name not in env.globals:
                raise _Unknown
            return env.globals[node.name]
        if isinstance(node, nodes.Getattr):
            return env.getattr(self.value(node.node, ctx), node.attr)
        if isinstance(node, (nodes.Filter, nodes.Call)) and not (node.dyn_args or node.dyn_kwargs):
            args = [self.value(x, ctx) for x in node.args]
            kwargs = {str(k.key): self.value(k.value, ctx) for k in node.kwargs}
            if isinstance(node, nodes.Call):
                return env.call(ctx, self.value(node.node, ctx), *args, **kwargs)
            if node.node is not None and node.name in env.filters:
                value = self.value(node.node, ctx)
                return env.call_filter(node.name, value, args, kwargs, context=ctx)
        raise _Unknown
