"""Tokenizer for the rule language.

Hand-written rather than borrowed from Python's `tokenize` so that the language stays
small: only the tokens below exist, and anything else (`**`, `:=`, `@`, string prefixes,
non-ASCII names, names starting with an underscore) is rejected here with its position.
"""

from __future__ import annotations

from dataclasses import dataclass

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

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "str", "name", "kw", "op", "eof"
    text: str
    value: object
    line: int
    column: int


class _Cursor:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.line = 1
        self.line_start = 0

    @property
    def column(self) -> int:
        return self.pos - self.line_start + 1

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.source[i] if i < len(self.source) else ""

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.source[self.pos] == "\n":
                self.line += 1
                self.line_start = self.pos + 1
            self.pos += 1

    def error(self, message: str, hint: str | None = None) -> RuleError:
        return RuleError.at(self.line, self.column, message, hint)


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
    while True:
        _skip_blank(cur)
        if cur.pos >= len(source):
            tokens.append(Token("eof", "", None, cur.line, cur.column))
            return tokens
        ch = cur.peek()
        line, column = cur.line, cur.column
        if ch.isascii() and (ch.isdigit() or (ch == "." and cur.peek(1).isdigit())):
            tokens.append(_number(cur))
        elif ch in "'\"":
            tokens.append(_string(cur))
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            tokens.append(_word(cur))
        else:
            for op in _ALL_OPERATORS:
                if source.startswith(op, cur.pos):
                    if op in UNSUPPORTED_OPERATORS:
                        raise cur.error(f"unexpected {op!r}", UNSUPPORTED_OPERATORS[op])
                    cur.advance(len(op))
                    tokens.append(Token("op", op, op, line, column))
                    break
            else:
                shown = ch if ch.isprintable() else f"\\u{ord(ch):04x}"
                raise cur.error(f"unexpected character {shown!r}")


def _skip_blank(cur: _Cursor) -> None:
    while cur.pos < len(cur.source):
        ch = cur.peek()
        if ch == "#":
            while cur.pos < len(cur.source) and cur.peek() != "\n":
                cur.advance()
        elif ch in " \t\r\n":
            cur.advance()
        else:
            return


def _number(cur: _Cursor) -> Token:
    line, column, start = cur.line, cur.column, cur.pos
    while cur.peek().isascii() and cur.peek().isdigit():
        cur.advance()
    is_float = False
    if cur.peek() == "." and cur.peek(1).isascii() and cur.peek(1).isdigit():
        is_float = True
        cur.advance()
        while cur.peek().isascii() and cur.peek().isdigit():
            cur.advance()
    if cur.peek() in ("e", "E"):
        k = 1
        if cur.peek(k) in ("+", "-"):
            k += 1
        if cur.peek(k).isascii() and cur.peek(k).isdigit():
            is_float = True
            cur.advance(k)
            while cur.peek().isascii() and cur.peek().isdigit():
                cur.advance()
    text = cur.source[start : cur.pos]
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
        if len(text) > 18:
            raise RuleError.at(line, column, f"integer {text} is too large (18 digits at most)")
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
            if esc not in _ESCAPES:
                raise cur.error(
                    f"unknown escape '\\{esc}' in string",
                    "known escapes: \\n \\t \\r \\\\ \\' \\\"",
                )
            chars.append(_ESCAPES[esc])
            cur.advance(2)
            continue
        chars.append(ch)
        cur.advance()
    return Token("str", cur.source[start : cur.pos], "".join(chars), line, column)


def _word(cur: _Cursor) -> Token:
    line, column, start = cur.line, cur.column, cur.pos
    while cur.peek().isascii() and (cur.peek().isalnum() or cur.peek() == "_"):
        cur.advance()
    word = cur.source[start : cur.pos]
    if cur.peek() in ("'", '"'):
        raise RuleError.at(
            line, column, f"string prefix {word!r} is not supported", "write a plain string: 'text'"
        )
    if not cur.peek().isascii():
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
