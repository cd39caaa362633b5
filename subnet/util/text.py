"""Small helpers for the one-line messages every error in this project ends up as."""

from __future__ import annotations


def one_line(text: object, limit: int = 200) -> str:
    """`text` with all whitespace folded to single spaces, cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc`, then what caused it (explicitly or while handling), to the root; cycles cut."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        chain.append(node)
        seen.add(id(node))
        node = node.__cause__ or node.__context__
    return chain


def os_error(exc: OSError) -> str:
    """An OSError as one line: what failed on which path ("Read-only file system: /x/validator.lock")."""
    if exc.strerror and exc.filename:
        return one_line(f"{exc.strerror}: {exc.filename}", 300)
    return one_line(exc.strerror or str(exc) or type(exc).__name__, 300)
