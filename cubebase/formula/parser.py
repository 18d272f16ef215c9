"""Text -> syntax tree, with limits checked before any parsing work is done.

``parse`` first runs a cheap linear pre-scan (length, quotes, braces and
bracket balance/depth) so that pathological input is refused before lark sees
it, then parses with an LALR grammar and turns the lark tree into ``ast``
dataclasses with a non-recursive transformer. A final iterative depth check
bounds the recursion of every later stage.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from . import ast as A
from .errors import FormulaError, Span

MAX_LENGTH = 10_000
MAX_BRACKET_DEPTH = 64
MAX_TREE_DEPTH = 100
MAX_NUMBER = Decimal("1e18")

_GRAMMAR = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)

_TOKEN_NAMES = {
    "RPAR": "`)`",
    "LPAR": "`(`",
    "COMMA": "`,`",
    "DOT": "`.`",
    "$END": "the end of the formula",
}
_VALUE_TOKENS = {"NAME", "NUMBER", "STRING", "BRACE", "TRUE", "FALSE", "LPAR"}


def prescan(source: str) -> None:
    """Refuse too long, unbalanced or too deeply nested input in one linear pass."""
    if len(source) > MAX_LENGTH:
        raise FormulaError.at(
            source[:200],
            Span(0, 1),
            f"the formula is too long ({len(source)} characters; at most {MAX_LENGTH})",
        )
    if not source.strip():
        raise FormulaError.at(source, Span(0, 0), "the formula is empty")
    opens: list[int] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in "\"'":
            j = i + 1
            while True:
                j = source.find(c, j)
                if j < 0:
                    raise FormulaError.at(
                        source, Span(i, i + 1), f"this text is never closed: add a closing {c}"
                    )
                if j + 1 < n and source[j + 1] == c:  # doubled quote: an escaped quote
                    j += 2
                    continue
                break
            i = j + 1
            continue
        if c == "{":
            j = i + 1
            while True:
                j = source.find("}", j)
                if j < 0:
                    raise FormulaError.at(
                        source, Span(i, i + 1), "this field name is never closed: add a closing }"
                    )
                if j + 1 < n and source[j + 1] == "}":
                    j += 2
                    continue
                break
            i = j + 1
            continue
        if c == "(":
            opens.append(i)
            if len(opens) > MAX_BRACKET_DEPTH:
                raise FormulaError.at(
                    source,
                    Span(i, i + 1),
                    f"the formula is nested too deeply (more than {MAX_BRACKET_DEPTH} "
                    "levels of brackets)",
                )
        elif c == ")":
            if not opens:
                raise FormulaError.at(
                    source, Span(i, i + 1), "unexpected `)`: there is no `(` to close here"
                )
            opens.pop()
        elif c == "}":
            raise FormulaError.at(source, Span(i, i + 1), "unexpected `}`")
        i += 1
    if opens:
        raise FormulaError.at(
            source, Span(opens[-1], opens[-1] + 1), "missing closing parenthesis for this `(`"
        )


def _span(meta_or_tok) -> Span:
    return Span(meta_or_tok.start_pos, meta_or_tok.end_pos)


def _tspan(tok: Token) -> Span:
    return Span(tok.start_pos, tok.end_pos)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Builds ``ast`` dataclasses; the only place that knows lark's tree shape."""

    def __init__(self, source: str):
        super().__init__()
        self.source = source

    def number(self, meta, ch):
        tok = ch[0]
        try:
            value = Decimal(str(tok))
        except InvalidOperation:  # pragma: no cover - the lexer only lets numbers through
            value = Decimal(0)
        if abs(value) > MAX_NUMBER:
            raise FormulaError.at(
                self.source, _tspan(tok), "this number is too large (at most 10^18)"
            )
        return A.Num(_span(meta), value)

    def text(self, meta, ch):
        raw = str(ch[0])
        q = raw[0]
        return A.Str(_span(meta), raw[1:-1].replace(q + q, q))

    def true(self, meta, ch):
        return A.Bool(_span(meta), True)

    def false(self, meta, ch):
        return A.Bool(_span(meta), False)

    def key_ref(self, meta, ch):
        return A.Ref(_span(meta), str(ch[0]), "key")

    def brace_ref(self, meta, ch):
        inner = str(ch[0])[1:-1].replace("}}", "}").strip()
        if inner.startswith("#") and inner[1:].isdigit():
            return A.Ref(_span(meta), inner[1:], "id")
        return A.Ref(_span(meta), inner, "label")

    def paren(self, meta, ch):
        return ch[1]

    def attr(self, meta, ch):
        return A.Attr(_span(meta), ch[0], ch[2])

    def neg(self, meta, ch):
        return A.Unary(_span(meta), "-", ch[1])

    def arith(self, meta, ch):
        return A.BinOp(_span(meta), str(ch[1]), ch[0], ch[2], _tspan(ch[1]))

    def concat(self, meta, ch):
        return A.BinOp(_span(meta), "&", ch[0], ch[2], _tspan(ch[1]))

    def compare(self, meta, ch):
        op = str(ch[1])
        return A.Compare(_span(meta), "!=" if op == "<>" else op, ch[0], ch[2], _tspan(ch[1]))

    def and_op(self, meta, ch):
        return A.Logic(_span(meta), "and", ch[0], ch[2], _tspan(ch[1]))

    def or_op(self, meta, ch):
        return A.Logic(_span(meta), "or", ch[0], ch[2], _tspan(ch[1]))

    def not_op(self, meta, ch):
        return A.Not(_span(meta), ch[1])

    def in_list(self, meta, ch):
        return A.InList(_span(meta), ch[0], ch[2])

    def in_value(self, meta, ch):
        return A.InValue(_span(meta), ch[0], ch[2])

    def args(self, meta, ch):
        return [c for c in ch if not isinstance(c, Token)]

    def fname(self, meta, ch):
        return ch[0]

    def call(self, meta, ch):
        name_tok = ch[0]
        args = ch[2] or []
        return A.Call(_span(meta), str(name_tok).upper(), args, _tspan(name_tok))


def _syntax_error(source: str, exc: LarkError) -> FormulaError:
    """Turn lark's exception into a message a business user can act on."""
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            stripped = source.rstrip()
            pos = len(stripped)
            last = stripped.split()[-1] if stripped.split() else ""
            after = f" after `{last[-20:]}`" if last else ""
            return FormulaError.at(
                source,
                Span(max(0, pos - 1), pos),
                f"the formula ends too early: a value is missing{after}",
            )
        span = _tspan(tok) if tok.start_pos is not None else Span(0, 1)
        prev = exc.token_history[-1] if exc.token_history else None
        shown = _TOKEN_NAMES.get(tok.type, f"`{tok}`")
        if prev is not None and tok.type in _VALUE_TOKENS and prev.type in _VALUE_TOKENS | {"RPAR"}:
            msg = f"unexpected {shown}: is an operator or a comma missing before it?"
        elif tok.type == "RPAR":
            msg = "unexpected `)`: a value is missing before it"
        elif tok.type == "COMMA":
            msg = (
                "unexpected `,`: a value is missing before it (commas separate function arguments)"
            )
        elif tok.type == "CMP_OP":
            msg = f"unexpected `{tok}`: comparisons cannot be chained; combine them with AND"
        else:
            msg = f"unexpected {shown}"
        return FormulaError.at(source, span, msg)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = source[pos] if pos < len(source) else ""
        return FormulaError.at(source, Span(pos, pos + 1), f"unexpected character `{ch}`")
    return FormulaError.at(source, Span(0, 1), "the formula could not be read")


def _check_depth(source: str, root: A.Node) -> None:
    """Iteratively bound the tree depth so later recursive stages stay shallow."""
    stack = [(root, 1)]
    while stack:
        node, d = stack.pop()
        if d > MAX_TREE_DEPTH:
            raise FormulaError.at(
                source,
                node.span,
                f"the formula is too complex (more than {MAX_TREE_DEPTH} nested operations)",
            )
        stack.extend((c, d + 1) for c in A.children(node))


@functools.lru_cache(maxsize=2048)
def parse(source: str) -> A.Node:
    """Parse ``source`` into a syntax tree; raises FormulaError on any problem."""
    if not isinstance(source, str):
        raise FormulaError.at("", Span(0, 0), "the formula must be text")
    prescan(source)
    try:
        tree = _PARSER.parse(source)
    except LarkError as exc:
        raise _syntax_error(source, exc) from None
    try:
        root = _ToAst(source).transform(tree)
    except FormulaError:
        raise
    except LarkError as exc:  # a FormulaError raised inside a callback is wrapped by lark
        inner = getattr(exc, "orig_exc", None)
        if isinstance(inner, FormulaError):
            raise inner from None
        raise FormulaError.at(source, Span(0, 1), "the formula could not be read") from None
    _check_depth(source, root)
    return root


def ref_tokens(source: str) -> list[A.Ref]:
    """Every field reference in ``source``, in text order (for the stored form)."""
    root = parse(source)
    refs = [n for n in A.walk(root) if isinstance(n, A.Ref)]
    return sorted(refs, key=lambda r: r.span.start)
