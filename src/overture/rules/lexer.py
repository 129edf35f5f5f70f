"""Tokenizer for the rule language.

Hand-written rather than borrowed from Python's `tokenize` so that the language stays
small: only the tokens below exist, and anything else (`**`, `:=`, `@`, string prefixes,
non-ASCII names, names starting with an underscore) is rejected here with its position.
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

from overture.rules.errors import RuleError

MAX_RULE_LENGTH = 20_000

KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "True", "False", "None", "true", "false", "null"}
)

# Python keywords that are not part of the language: named explicitly so the message says why.
FORBIDDEN_KEYWORDS = frozenset(
    {
        "lambda",
        "for",
        "import",
        "from",
        "def",
        "class",
        "while",
        "yield",
        "await",
        "async",
        "global",
        "nonlocal",
        "with",
        "as",
        "del",
        "pass",
        "return",
        "raise",
        "try",
        "except",
        "finally",
        "assert",
        "break",
        "continue",
        "elif",
        "match",
        "case",
    }
)

# Longest first so that "<=" wins over "<".
OPERATORS = (
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
)

UNSUPPORTED_OPERATORS = {
    "**": "'**' is not supported; multiply explicitly",
    "//": "'//' is not supported; use floor(a / b)",
    ":=": "assignment is not allowed in a rule",
    "<>": "'<>' is not supported; use '!='",
    "=": "'=' is assignment in Python syntax; compare with '=='",
    "&&": "use 'and'",
    "||": "use 'or'",
    "!": "use 'not'",
    "&": "bitwise operators are not supported; use 'and'",
    "|": "bitwise operators are not supported; use 'or'",
    "^": "bitwise operators are not supported",
    "~": "bitwise operators are not supported; use 'not'",
    "<<": "bitwise operators are not supported",
    ">>": "bitwise operators are not supported",
    "@": "'@' is not supported",
    ":": "':' is not supported (no slices, dictionaries or lambdas in a rule)",
    ";": "a rule is one expression; combine conditions with 'and'",
    "{": "dictionaries and sets are not supported; use a list: ('a', 'b')",
    "}": "dictionaries and sets are not supported",
    "\\": "a rule may span lines without '\\'",
}

# Valid and rejected operators together, longest first: "==" must win over "=", "**" over "*".
_ALL_OPERATORS = sorted({*OPERATORS, *UNSUPPORTED_OPERATORS}, key=len, reverse=True)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


class Token(NamedTuple):
    kind: str  # "num", "str", "name", "kw", "op", "eof"
    text: str
    value: object
    line: int
    column: int


_TOKENS = re.compile(
    r"""
    (?P<blank>[ \t\r\n]+|\#[^\n]*)
  | (?P<num>[0-9]|\.[0-9])
  | (?P<word>[A-Za-z_])
  | (?P<str>['"])
  | (?P<op>==|!=|<=|>=|[<>+\-*/%()\[\],.])
    """,
    re.VERBOSE,
)


class _Cursor:
    """Where the tokenizer is; lines and columns are computed only for tokens and errors."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(source) if ch == "\n"]

    def where(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, pos)
        return line, pos - self._line_starts[line - 1] + 1

    @property
    def line(self) -> int:
        return self.where(self.pos)[0]

    @property
    def column(self) -> int:
        return self.where(self.pos)[1]

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.source[i] if i < len(self.source) else ""

    def advance(self, n: int = 1) -> None:
        self.pos += n

    def error(self, message: str, hint: str | None = None) -> RuleError:
        line, column = self.where(self.pos)
        return RuleError.at(line, column, message, hint)


def tokenize(source: str) -> list[Token]:
    """Split a rule into tokens, ending with an "eof" token."""
    if len(source) > MAX_RULE_LENGTH:
        raise RuleError.at(
            1,
            1,
            f"rule is {len(source)} characters long; the limit is {MAX_RULE_LENGTH}",
            "split it into segments and refer to them as segment.<name>",
        )
    cur = _Cursor(source)
    tokens: list[Token] = []
    end = len(source)
    while cur.pos < end:
        match = _TOKENS.match(source, cur.pos)
        if match is None or (match.lastgroup == "op" and _rejected_here(source, cur.pos)):
            raise _unexpected(cur)
        kind = match.lastgroup
        if kind == "blank":
            cur.pos = match.end()
        elif kind == "num":
            tokens.append(_number(cur))
        elif kind == "word":
            tokens.append(_word(cur))
        elif kind == "str":
            tokens.append(_string(cur))
        else:
            line, column = cur.where(cur.pos)
            tokens.append(Token("op", match.group(), match.group(), line, column))
            cur.pos = match.end()
    line, column = cur.where(end)
    tokens.append(Token("eof", "", None, line, column))
    return tokens


def _unexpected(cur: _Cursor) -> RuleError:
    """The error for what no token starts with: a rejected operator, or any character."""
    for op in _ALL_OPERATORS:
        if cur.source.startswith(op, cur.pos) and op in UNSUPPORTED_OPERATORS:
            return cur.error(f"unexpected {op!r}", UNSUPPORTED_OPERATORS[op])
    ch = cur.source[cur.pos]
    shown = ch if ch.isprintable() else f"\\u{ord(ch):04x}"
    return cur.error(f"unexpected character '{shown}'")


def _rejected_here(source: str, pos: int) -> bool:
    """Whether a longer rejected operator starts here ('**' before '*', '//' before '/')."""
    return source.startswith(_REJECTED_PREFIXES, pos)


_REJECTED_PREFIXES = tuple(
    op for op in UNSUPPORTED_OPERATORS if any(op.startswith(v) and op != v for v in OPERATORS)
)


_NUMBER = re.compile(r"[0-9]*(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z0-9_]+")


def _number(cur: _Cursor) -> Token:
    (line, column), start = cur.where(cur.pos), cur.pos
    match = _NUMBER.match(cur.source, start)
    assert match is not None  # the pattern matches the empty string
    cur.pos = match.end()
    is_float = match.group(1) is not None or match.group(2) is not None
    text = match.group()
    nxt = cur.peek()
    if nxt.isascii() and (nxt.isalpha() or nxt == "_"):
        raise cur.error(f"invalid number {text + nxt!r}", "numbers are written like 42, 3.5 or 1e6")
    if is_float:
        value: object = float(text)
        if value in (float("inf"), float("-inf")):
            raise RuleError.at(line, column, f"number {text} is too large")
    else:
        if len(text) > 1 and text.startswith("0"):
            raise RuleError.at(line, column, f"invalid number {text!r}", "remove the leading zeros")
        # 2**63 is let through for the checker: only `-9223372036854775808` may use it
        if len(text) > 19 or int(text) > 2**63:
            raise RuleError.at(
                line, column, f"integer {text} is too large", "at most 9223372036854775807"
            )
        value = int(text)
    return Token("num", text, value, line, column)


def _string(cur: _Cursor) -> Token:
    line, column, start = cur.line, cur.column, cur.pos
    quote = cur.peek()
    if cur.source.startswith(quote * 3, cur.pos):
        raise cur.error("triple-quoted strings are not supported", "use a single-line string")
    cur.advance()
    chars: list[str] = []
    while True:
        ch = cur.peek()
        if ch == "":
            raise RuleError.at(line, column, "unterminated string", f"close it with {quote}")
        if ch == "\n":
            raise RuleError.at(
                line,
                column,
                "unterminated string (strings end on their line)",
                f"close it with {quote}",
            )
        if ch == quote:
            cur.advance()
            break
        if ch == "\\":
            esc = cur.peek(1)
            if esc == "0":
                raise cur.error(
                    "a string cannot hold the NUL character",
                    "PostgreSQL cannot store it; remove it from the rule",
                )
            if esc not in _ESCAPES:
                raise cur.error(
                    f"unknown escape '\\{esc}' in string",
                    "known escapes: \\n \\t \\r \\\\ \\' \\\"",
                )
            chars.append(_ESCAPES[esc])
            cur.advance(2)
            continue
        if ch == "\x00":
            raise cur.error(
                "a string cannot hold the NUL character",
                "PostgreSQL cannot store it; remove it from the rule",
            )
        chars.append(ch)
        cur.advance()
    return Token("str", cur.source[start : cur.pos], "".join(chars), line, column)


def _word(cur: _Cursor) -> Token:
    (line, column), start = cur.where(cur.pos), cur.pos
    match = _WORD.match(cur.source, start)
    assert match is not None  # tokenize() saw a letter or '_' here
    cur.pos = match.end()
    word = match.group()
    if cur.peek() in ("'", '"'):
        raise RuleError.at(
            line, column, f"string prefix {word!r} is not supported", "write a plain string: 'text'"
        )
    if cur.peek() and not cur.peek().isascii():
        raise cur.error(f"unexpected character {cur.peek()!r} in a name", "names are ASCII")
    if word.startswith("_"):
        raise RuleError.at(
            line,
            column,
            f"names starting with '_' are not allowed: {word!r}",
            "rules can only read profile, context, segment and offer fields",
        )
    if word in FORBIDDEN_KEYWORDS:
        raise RuleError.at(
            line,
            column,
            f"'{word}' is not allowed in a rule",
            "a rule is a single expression over fields, literals and functions",
        )
    return Token("kw" if word in KEYWORDS else "name", word, word, line, column)
