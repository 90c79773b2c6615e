"""Configuration files in TOML whose every mistake is named by its line, shared by routing and risk.

An operator fixing a file wants all of its mistakes at once, each with a line to jump to, so a reader
collects Problems instead of stopping at the first, and finds lines by scanning the text (tomllib
gives values, not positions). Each file kind subclasses ConfigError and reads its tables with a
TableChecker; `decode` and `finish` bracket the reading.
"""

import re
import tomllib
from bisect import bisect_right
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: More than this many problems are cut to a count: past it, the file is not nearly right.
MAX_PROBLEMS = 100

_HEADER = re.compile(r"\s*\[(\[)?\s*([A-Za-z0-9_\-.]+)\s*\]\]?\s*(?:#.*)?\Z")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*\Z")


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a file: its line (None when it cannot be told), its path, what is wrong."""

    line: int | None
    path: str
    message: str

    def format(self, source: str) -> str:
        where = source if self.line is None else f"{source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A file is refused; `problems` lists every mistake found, str() one per line."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problem.format(source) for problem in problems))


class SourceLines:
    """Finds the line of a table or key by scanning the text, for the usual one-key-per-line layout.

    Where the layout is unusual (arrays of inline tables, say), lines are None rather than a guess.
    Headers are 0-based line indexes, -1 standing for the top level; lines returned are 1-based.
    """

    def __init__(self, text: str):
        self._lines = text.splitlines()
        self._headers: list[tuple[int, str, bool]] = []  # (0-based index, table name, is an array table)
        for index, line in enumerate(self._lines):
            header = _HEADER.match(line)
            if header:
                self._headers.append((index, header.group(2), header.group(1) is not None))
        self._header_indexes = [index for index, _name, _array in self._headers]

    @property
    def last(self) -> int:
        return max(len(self._lines), 1)

    def array_headers(self, name: str, count: int) -> list[int | None]:
        """The 0-based header line of each [[name]] entry, or Nones when they do not add up to count."""
        found = [index for index, header, array in self._headers if header == name and array]
        return found if len(found) == count else [None] * count

    def table_header(self, name: str) -> int | None:
        """The 0-based line of the [name] header, or None when it is not written as one."""
        found = [index for index, header, array in self._headers if header == name and not array]
        return found[0] if len(found) == 1 else None

    def top_level_line(self, name: str) -> int | None:
        """The 1-based line where a top-level name is first given: `name =`, or a [name] or [[name]] header."""
        line = self.key_line(-1, name)
        if line is not None:
            return line
        return next((index + 1 for index, header, _array in self._headers if header == name), None)

    def _table_end(self, header: int) -> int:
        position = bisect_right(self._header_indexes, header)
        return self._header_indexes[position] if position < len(self._header_indexes) else len(self._lines)

    def key_line(self, header: int | None, key: str) -> int | None:
        """The 1-based line where `key =` starts in the table under header (-1: the top level),
        else the header's own line."""
        if header is None:
            return None
        pattern = re.compile(rf"""\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*[.=]""")
        for index in range(header + 1, self._table_end(header)):
            if pattern.match(self._lines[index]):
                return index + 1
        return header + 1 if header >= 0 else None

    def item_line(self, header: int | None, key: str, item: str) -> int | None:
        """The 1-based line of a string item of the array `key`, which may span many lines: the first
        line from the key's on that holds the item quoted; else the key's line."""
        start = self.key_line(header, key)
        if start is None:
            return None
        quoted = (f'"{item}"', f"'{item}'")
        for index in range(start - 1, self._table_end(header)):
            if any(text in self._lines[index] for text in quoted):
                return index + 1
        return start


class TableChecker:
    """Reads typed values out of one parsed table, adding a Problem for each mistake."""

    def __init__(self, lines: SourceLines, problems: list[Problem], header: int | None, path: str):
        self.lines, self.problems, self.header, self.path = lines, problems, header, path
        self.start = len(problems)

    @property
    def ok(self) -> bool:
        """No problem was found in this table."""
        return len(self.problems) == self.start

    @property
    def line(self) -> int | None:
        return None if self.header is None or self.header < 0 else self.header + 1

    def _path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.lines.key_line(self.header, key), self._path(key), message))

    def fail_item(self, key: str, item: str, message: str) -> None:
        """A problem with one string of an array, on the line that holds it."""
        self.problems.append(Problem(self.lines.item_line(self.header, key, item), self._path(key), message))

    def unknown_keys(self, table: dict, allowed: Collection[str]) -> None:
        for key in table:
            if key not in allowed:
                self.fail(key, "is not a known setting")

    def string(self, table: dict, key: str, check: Callable[[str], bool], wanted: str,
               required: bool = False) -> str | None:
        if key not in table:
            if required:
                self.fail(key, "is required")
            return None
        value = table[key]
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {kind(value)}")
        elif not check(value):
            self.fail(key, f"must be {wanted}, got {value[:80]!r}")
        else:
            return value
        return None

    def strings(self, table: dict, key: str, check: Callable[[str], bool], wanted: str) -> tuple[str, ...] | None:
        """A list criterion: absent is None (any value); present must be a non-empty list of valid strings."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, "must be a list of strings")
            return None
        if not value:
            self.fail(key, "must not be empty: leave the key out to accept any value")
            return None
        wrong = [item for item in value if not check(item)]
        if wrong:
            self.fail(key, f"{wrong[0][:80]!r} is not {wanted}")
            return None
        return tuple(value)

    def integer(self, table: dict, key: str, low: int, high: int, unit: str = "",
                required: bool = False) -> int | None:
        if key not in table:
            if required:
                self.fail(key, "is required")
            return None
        value = table[key]
        if isinstance(value, float):
            self.fail(key, f"must be an integer{unit}, not a float ({value!r})"
                      + (": money is never a float" if unit else ""))
        elif not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"must be an integer{unit}, not {kind(value)}")
        elif not low <= value <= high:
            self.fail(key, f"must be {low} to {high}, got {value}")
        else:
            return value
        return None


def kind(value: Any) -> str:
    """How a TOML value is described in a message: 'a float', 'a table'."""
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def decode(text: str, source: str, lines: SourceLines, error: type[ConfigError]) -> dict:
    """The parsed document; invalid TOML raises `error` with the parser's message on its line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as decode_error:
        position = _TOML_POSITION.search(str(decode_error))
        message = str(decode_error)[:position.start()] if position else str(decode_error)
        line = (int(position.group(1)) if position.group(1) else lines.last) if position else None
        if position and position.group(2):
            message += f" (column {position.group(2)})"
        raise error(source, [Problem(line, "", f"not valid TOML: {message}")]) from None


def array_of_tables(data: dict, key: str, lines: SourceLines,
                    problems: list[Problem]) -> list[tuple[dict, int | None]]:
    """The entries of an array of tables with their header lines; an empty list when absent or wrong."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(Problem(lines.key_line(-1, key), key, f"must be an array of tables ([[{key}]])"))
        return []
    return list(zip(value, lines.array_headers(key, len(value))))


def finish(problems: list[Problem], source: str, error: type[ConfigError]) -> None:
    """Raise `error` with the problems in line order (at most MAX_PROBLEMS shown), if there are any."""
    if not problems:
        return
    problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [Problem(None, "", f"{len(problems) - MAX_PROBLEMS} more problems not shown")]
    raise error(source, problems)


def read_text(path: str | Path, error: type[ConfigError]) -> str:
    """A file's UTF-8 text; an unreadable file raises `error` like a wrong one."""
    source = str(path)
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as os_error:
        raise error(source, [Problem(None, "", os_error.strerror or str(os_error))]) from None
    except UnicodeDecodeError as decode_error:
        raise error(source, [Problem(None, "", f"not UTF-8 text: {decode_error.reason}")]) from None
