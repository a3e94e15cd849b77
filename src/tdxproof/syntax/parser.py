"""parse(SourceFile) -> ast.PolicyFile, turning lark's errors into Diagnostics.

Parsing stops at the first syntax error in a file. A missing `;`, `}` or `)`
is reported just after the previous token (where the user forgot it), not on
the next line where lark noticed.
"""

from __future__ import annotations

from lark import Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from tdxproof.diagnostics import Diagnostics
from tdxproof.source import SourceFile, Span
from tdxproof.syntax import ast
from tdxproof.syntax.build import Build
from tdxproof.syntax.grammar import parser

# terminal names -> words a kernel developer reads
TOKEN_WORDS: dict[str, str] = {
    "SEMICOLON": "`;`", "COLON": "`:`", "COMMA": "`,`", "DOT": "`.`",
    "LBRACE": "`{`", "RBRACE": "`}`", "LPAR": "`(`", "RPAR": "`)`",
    "LSQB": "`[`", "RSQB": "`]`", "EQUAL": "`=`", "AT": "`@`", "QMARK": "`?`",
    "NAME": "a name", "PROPNAME": "a property name", "INT": "a number",
    "STRING": "a string", "$END": "end of file", "EQOP": "`==` or `!=`",
    "RELOP": "a comparison", "ADDOP": "`+` or `-`", "AUGOP": "`+=` or `-=`",
    "INCDEC": "`++` or `--`", "MINUS": "`-`", "BANG": "`!`", "__ANON_0": "`->`",
    "OROR": "`||`", "ANDAND": "`&&`",
}

# Specific messages for common mistakes, keyed by (unexpected token text, a token expected).
HINTS: tuple[tuple[str, str, str], ...] = (
    ("=", "EQOP", "use `==` to compare; `=` assigns"),
    ("=", "LBRACE", "use `==` to compare; `=` assigns"),
    ("cpu", "LPAR", "a quantifier inside `&&`, `||` or a comparison needs parentheses: "
                    "`a && (exists cpu c: ...)`"),
    ("{", "STRING", "`atomic` needs a string citing the kernel mechanism that makes it atomic, "
                    "e.g. atomic \"raw_spin_lock(&lock->wait_lock)\" { ... }"),
)

MAX_BYTES = 2_000_000
# Brackets nested deeper than this are refused while parsing: every later stage
# recurses on the tree, and a generated 5,000-deep file must be an error, not a
# RecursionError. Real policies nest a handful of levels.
MAX_NESTING = 64
OPENERS, CLOSERS = {"LBRACE", "LPAR", "LSQB"}, {"RBRACE", "RPAR", "RSQB"}


def _word(name: str) -> str:
    if name in TOKEN_WORDS:
        return TOKEN_WORDS[name]
    # anonymous keyword terminals are named after their text (IF, WAITS, ...)
    return f"`{name.lower()}`" if name.isupper() and name.isalpha() else name


def _expected(names: set[str]) -> str:
    words = sorted({_word(n) for n in names if not n.startswith("_")})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words) if len(words) > 1 else (words[0] if words else "nothing")


def read_source(path: str) -> SourceFile:
    """Read a policy file; unreadable, binary, non-UTF-8 or huge files become E5xx errors."""
    diags = Diagnostics()
    span = Span(path, 1, 1, 1, 1)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        diags.error("E501", f"no such file `{path}`", span)
        diags.raise_if_errors()
        raise AssertionError  # unreachable
    except OSError as exc:
        diags.error("E502", f"cannot read `{path}`: {exc.strerror}", span)
        diags.raise_if_errors()
        raise AssertionError
    return source_from_bytes(path, data)


def source_from_bytes(path: str, data: bytes) -> SourceFile:
    diags = Diagnostics()
    span = Span(path, 1, 1, 1, 1)
    if len(data) > MAX_BYTES:
        diags.error("E503", f"file is larger than {MAX_BYTES // 1_000_000} MB; is it a policy?", span)
    elif b"\0" in data:
        diags.error("E504", "file is binary (contains NUL bytes), not a policy", span)
    else:
        try:
            return SourceFile.from_text(path, data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            diags.error("E505", "file is not valid UTF-8", Span(path, line, col, line, col + 1))
    diags.raise_if_errors()
    raise AssertionError


def parse(src: SourceFile) -> ast.PolicyFile:
    diags = Diagnostics()
    prev: Token | None = None
    last: Token | None = None
    try:
        ip = parser().parse_interactive(src.text)
        depth = 0
        for tok in ip.iter_parse():
            prev, last = last, tok
            depth += (tok.type in OPENERS) - (tok.type in CLOSERS)
            if depth > MAX_NESTING:
                diags.error("E105", f"nested more than {MAX_NESTING} levels deep", Span(
                    src.path, tok.line, tok.column, tok.line, tok.column + 1),
                    help="split the code into functions")
                diags.raise_if_errors()
        tree = ip.resume_parse()
        return Build(src.path).transform(tree)
    except UnexpectedCharacters as e:
        ch = src.text[e.pos_in_stream] if e.pos_in_stream < len(src.text) else "?"
        span = Span(src.path, e.line, e.column, e.line, e.column + 1)
        diags.error("E101", f"unexpected character `{ch}`", span,
                    help=_char_help(ch))
    except UnexpectedEOF as e:
        want = "`}`" if "RBRACE" in e.expected else _expected(set(e.expected))
        diags.error("E102", f"unexpected end of file, expected {want}", _after(src, last))
    except UnexpectedToken as e:
        expected = set(e.accepts or e.expected)
        tok = e.token
        before = prev if last is not None and _same(last, tok) else last
        if tok.type == "$END":
            want = "`}`" if "RBRACE" in expected else _expected(expected)
            diags.error("E102", f"unexpected end of file, expected {want}", _after(src, before))
        else:
            help_ = next((h for text, want, h in HINTS if tok == text and want in expected), None)
            missing = _missing_closer(expected, tok, before)
            if missing is not None and before is not None:
                # a forgotten `;` or `}`: point just after the token before it
                diags.error("E103", f"expected {missing} after this, found {_describe(tok)}",
                            _after(src, before), help=help_)
            else:
                span = Span(src.path, tok.line, tok.column, tok.end_line or tok.line,
                            tok.end_column or tok.column + len(tok))
                diags.error("E104", f"unexpected {_describe(tok)}, expected {_expected(expected)}",
                            span, help=help_)
    except LarkError as e:  # pragma: no cover - lark's other errors carry no position
        diags.error("E100", f"cannot parse: {e}", Span(src.path, 1, 1, 1, 1))
    diags.raise_if_errors()
    raise AssertionError


def _same(a: Token, b: Token) -> bool:
    return a.start_pos == b.start_pos and a.type == b.type


def _describe(tok: Token) -> str:
    if tok.type in ("NAME", "PROPNAME"):
        return f"name `{tok}`"
    if tok.type.isupper() and tok.type.isalpha() and tok.type not in TOKEN_WORDS:
        return f"keyword `{tok}`"
    return f"`{tok}`"


def _missing_closer(expected: set[str], tok: Token, before: Token | None) -> str | None:
    """The closer the user most likely forgot, if the error looks like a forgotten one."""
    if before is None:
        return None
    new_line = tok.line > (before.end_line or before.line)
    for closer in ("SEMICOLON", "RPAR", "RSQB", "RBRACE"):
        if closer in expected and (len(expected) == 1 or new_line or tok.type == "RBRACE"):
            return TOKEN_WORDS[closer]
    return None


def _after(src: SourceFile, tok: Token | None) -> Span:
    if tok is None:
        return Span(src.path, 1, 1, 1, 1)
    line = tok.end_line or tok.line
    col = tok.end_column or (tok.column + len(tok))
    return Span(src.path, line, col, line, col + 1)


def _char_help(ch: str) -> str | None:
    return {
        "#": "comments start with `//`",
        "'": "strings use double quotes",
        "&": "use `&&` for logical and",
        "|": "use `||` for logical or",
    }.get(ch)
