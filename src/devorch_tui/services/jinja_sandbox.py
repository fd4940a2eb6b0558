"""The Jinja2 environment templates render in: jinja2's sandbox plus limits on work and size.

jinja2's ``SandboxedEnvironment`` keeps templates away from Python internals but lets them run for
ever or fill the memory. Here every way a template can do a lot of work or build something huge is
bounded, so such a template ends in a :class:`LimitError` (a jinja2 ``SecurityError``, so callers see
a TemplateError with the template line) instead of a hang, a MemoryError or a traceback:

* work: every block run (loop iteration, ``if`` branch, macro body) is a step; at most ``MAX_STEPS``;
* size: rendered text, and every string, list or mapping made on the way, at most ``MAX_SIZE``;
  ``*``, padding widths, ``join``/``replace``/``indent`` results are estimated *before* they are made,
  ``+``, ``~``, calls, filters and attribute reads are checked after;
* ``range()`` at most ``MAX_RANGE`` items, ``**`` at most ``MAX_POWER_BITS`` bits, widths in ``%``
  and ``str.format`` specs at most ``MAX_SIZE``; recursion ends in Python's RecursionError, which the
  caller turns into a TemplateError.

A cloud-config is a few kilobytes: the limits are far above what any real template needs.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SecurityError, SandboxedEnvironment

MAX_SIZE = 1_000_000  # characters of output; items of a list or mapping
MAX_STEPS = 1_000_000
MAX_RANGE = 100_000
MAX_POWER_BITS = 100_000

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*([0-9]*)(?:\.([0-9]*))?")
_NUMBER = re.compile(r"[0-9]+")
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


class LimitError(SecurityError):
    """A template went over one of the limits (too much work or too big a value)."""


def _too_big(what: str, size: int) -> LimitError:
    return LimitError(f"{what} would be {size:,} long, over the limit of {MAX_SIZE:,}")


def checked(value: Any) -> Any:
    """``value`` unchanged, unless it is a string or collection over MAX_SIZE."""
    if isinstance(value, _SIZED) and len(value) > MAX_SIZE:
        raise _too_big(f"a {type(value).__name__}", len(value))
    return value


def _width(digits: str) -> int:
    """The number ``digits`` spells, capped (no huge int from a long run of digits)."""
    return int(digits.lstrip("0")[:9] or "0")


def _check_printf(fmt: Any) -> None:
    if isinstance(fmt, str):
        for match in _PRINTF_SPEC.finditer(fmt):
            for number in match.groups():
                if number and _width(number) > MAX_SIZE:
                    raise LimitError(f"the width {number} in {fmt[:40]!r} is over the limit of {MAX_SIZE:,}")


def _check_format_spec(fmt: str) -> bool:
    """Refuse huge literal widths in a ``str.format`` string; True when widths come from arguments."""
    nested = False
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return False  # format() itself reports the broken format string
    for _, _, spec, _ in fields:
        if spec:
            nested = nested or "{" in spec
            for number in _NUMBER.findall(spec):
                if _width(number) > MAX_SIZE:
                    raise LimitError(f"the width {number} in {fmt[:40]!r} is over the limit of {MAX_SIZE:,}")
    return nested


def _check_numbers(values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise LimitError(f"the number {value if abs(value) < 10**30 else 'given'} is over the limit of {MAX_SIZE:,} here")


def _length(value: Any) -> int:
    """len(value) for strings, collections and ranges; 0 for what has no length (numbers, generators)."""
    try:
        return len(value)
    except TypeError:
        return 0


def _estimate_replace(s: Any, old: Any, new: Any, count: Any = None) -> int:
    if not (isinstance(s, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    times = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(s) + times * len(new)


def _estimate_indent(s: Any, width: Any = 4, *_: Any) -> int:
    pad = width if isinstance(width, int) else _length(width)
    return _length(s) + pad * (str(s).count("\n") + 1)


def _estimate_expandtabs(s: Any, tabsize: Any = 8) -> int:
    return _length(s) + (tabsize if isinstance(tabsize, int) else 0) * str(s).count("\t")


def _estimate_join(sep: Any, items: Any) -> int:
    if isinstance(items, (range, *_SIZED)):
        return _length(sep) * len(items) + sum(_length(item) for item in items if isinstance(item, str))
    return 0


def _materialized(items: Any) -> Any:
    """``items`` as a list when it is an iterator (so join can be estimated), at most MAX_SIZE items."""
    if isinstance(items, (range, *_SIZED)) or not hasattr(items, "__iter__"):
        return items
    listed = list(itertools.islice(items, MAX_SIZE + 1))
    if len(listed) > MAX_SIZE:
        raise _too_big("a sequence", len(listed))
    return listed


def _estimate_width(_: Any, width: Any = 0, *__: Any) -> int:
    return width if isinstance(width, int) else 0


# How big a result would be, from (value, *arguments), for the functions that can make a huge one
# out of small inputs. Keys are filter names and str method names.
_FILTER_ESTIMATES: dict[str, Callable[..., int]] = {
    "center": _estimate_width,
    "indent": _estimate_indent,
    "replace": _estimate_replace,
    "join": lambda items, sep="", *_: _estimate_join(sep, items),
    "batch": _estimate_width,
    "slice": _estimate_width,
}
_METHOD_ESTIMATES: dict[str, Callable[..., int]] = {
    "center": _estimate_width,
    "ljust": _estimate_width,
    "rjust": _estimate_width,
    "zfill": _estimate_width,
    "expandtabs": _estimate_expandtabs,
    "replace": _estimate_replace,
    "join": _estimate_join,
}


def _bound(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[Any] | None:
    """The arguments of a call in parameter order (None when they do not fit: the call reports that)."""
    if not kwargs:
        return list(args)
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    return list(bound.arguments.values())


def _precheck(name: str, estimate: Callable[..., int], values: list[Any] | None) -> None:
    """Refuse a call whose result ``estimate(*values)`` says would be over MAX_SIZE (None: arguments that
    do not fit, which the call itself reports)."""
    if values is None:
        return
    try:
        size = estimate(*values)
    except TypeError:
        return  # wrong arguments: the real call reports them
    if size > MAX_SIZE:
        raise _too_big(f"the result of {name}()", size)


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # context/environment first
    estimate = _FILTER_ESTIMATES.get(name)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if name == "format" and len(args) > skip:
            _check_printf(args[skip])
        if name == "join" and len(args) > skip:
            args = (*args[:skip], _materialized(args[skip]), *args[skip + 1 :])
        if estimate is not None:
            values = _bound(func, args, kwargs)
            _precheck(name, estimate, values[skip:] if values is not None else None)
        return checked(func(*args, **kwargs))

    return guarded


def safe_range(*args: int) -> range:
    """``range`` of at most MAX_RANGE items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(f"range() of {len(numbers):,} items is over the limit of {MAX_RANGE:,}")
    return numbers


class _CodeGenerator(CodeGenerator):
    """Counts a step at the start of every block and checks the size of every ``~`` result."""

    def blockvisit(self, nodes: Iterable[nodes.Node], frame: Frame) -> None:
        self.writeline("environment.step()")
        super().blockvisit(nodes, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


class LimitedSandbox(SandboxedEnvironment):
    """A SandboxedEnvironment with the limits above. Make one per render: it counts the steps."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.steps = 0
        self.globals["range"] = safe_range
        self.globals.pop("lipsum", None)  # makes up to 100 paragraphs per call: no use in cloud-config
        for name, func in list(self.filters.items()):
            self.filters[name] = _guarded_filter(name, func)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitError(f"the template did more than {MAX_STEPS:,} steps (loop iterations, branches, macro calls)")

    checked = staticmethod(checked)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, _SIZED) and isinstance(times, int) and len(sequence) * times > MAX_SIZE:
                    raise _too_big(f"a {type(sequence).__name__} repeated {times:,} times", len(sequence) * times)
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                if abs(left).bit_length() * right > MAX_POWER_BITS:
                    raise LimitError(f"{left} ** {right} is too big a number")
        elif operator == "%":
            _check_printf(left)
        return checked(super().call_binop(context, operator, left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        estimate = _METHOD_ESTIMATES.get(getattr(obj, "__name__", "")) if isinstance(owner, str) else None
        if estimate is not None:
            if obj.__name__ == "join" and args:
                args = (_materialized(args[0]), *args[1:])
            values = _bound(obj, args, kwargs)
            _precheck(obj.__name__, estimate, [owner, *values] if values is not None else None)
        return checked(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        return checked(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return checked(super().getitem(obj, argument))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        nested = _check_format_spec(value.__self__)

        @functools.wraps(wrapper)
        def guarded(*args: Any, **kwargs: Any) -> str:
            if nested:  # widths like {:{w}} come from the arguments
                _check_numbers((*args, *kwargs.values()))
            return checked(wrapper(*args, **kwargs))

        return guarded


def render(template: Any, context: Mapping[str, Any]) -> str:
    """Render ``template`` (made by a LimitedSandbox) with at most MAX_SIZE characters of output."""
    chunks: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_SIZE:
            raise _too_big("the rendered text", size)
        chunks.append(chunk)
    return "".join(chunks)
