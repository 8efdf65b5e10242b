"""The report's code stays in parts one can read: no JavaScript function in report/js over MAX_FUNCTION_LINES lines
(but the point layer's measured CPU loop, which may grow with its reasons; tests/test_module_size.py holds the
Python modules to their limit), and script.py joins every page part there is, each once. `contract_properties` reads the page's
data contract (js/contract.js) for the tests that hold the payload and the hook to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from layerlapse.report import script

REPORT = Path(__file__).resolve().parents[2] / "src" / "layerlapse" / "report"
MAX_FUNCTION_LINES = 300
# Functions that may be longer, each with the measurement that says why
MEASURED_EXCEPTIONS = {
    "draw2d": "pointlayer_cpu.js: each point's blending is written out in the loop on purpose; as small functions, "
              "V8 did not inline them and a million-point step took 119 ms instead of 71 (bench/report_speed.py)",
}
NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "with"}  # a block after "word (...)" that is no function


def code_only(text: str) -> str:
    """The text with every comment, string, template literal and regular expression blanked (newlines kept), so
    that the braces and parentheses left are the code's own. A template literal's ${...} is blanked too: the scan
    looks for functions, not into strings."""
    out, k = list(text), 0
    while k < len(text):
        end = literal_end(text, k)
        if end is None:
            k += 1
            continue
        for m in range(k, end):
            if out[m] != "\n":
                out[m] = " "
        k = end
    return "".join(out)


def literal_end(text: str, k: int) -> int | None:
    """Where the comment, string or regular expression starting at `k` ends, or None if none starts there."""
    c = text[k]
    if text.startswith("//", k):
        end = text.find("\n", k)
        return len(text) if end < 0 else end
    if text.startswith("/*", k):
        return text.index("*/", k) + 2
    end = k + 1
    if c == "/" and re.search(r"(^|[(,=:[!&|?{};]|\breturn)\s*$", text[max(0, k - 80):k]):
        in_class = False  # a regular expression, where an operand goes: it ends at a "/" outside a [class]
        while in_class or text[end] != "/":
            in_class = (in_class or text[end] == "[") and text[end] != "]"
            end += 2 if text[end] == "\\" else 1
        return end + 1
    if c in "'\"`":
        while text[end] != c:
            end += 2 if text[end] == "\\" else 1
        return end + 1
    return None


def js_functions(text: str) -> list[tuple[str, int]]:
    """(name, lines) of every function body in a JavaScript file: declarations, expressions, methods and arrows."""
    code = code_only(text)
    found, opened = [], []
    for k, c in enumerate(code):
        if c == "{":
            opened.append((k, function_name(code[:k])))
        elif c == "}":
            start, name = opened.pop()
            if name is not None:
                found.append((name, code.count("\n", start, k) + 1))
    assert not opened, "unbalanced braces"
    return found


def function_name(before: str) -> str | None:
    """The name of the function whose body starts after `before`, "(arrow)" or "(anonymous)", or None for a block
    that is no function's body."""
    head = before.rstrip()
    if head.endswith("=>"):
        return "(arrow)"
    if not head.endswith(")"):
        return None
    depth = 0
    for k in range(len(head) - 1, -1, -1):  # back to the parameters' opening parenthesis
        depth += {")": 1, "(": -1}.get(head[k], 0)
        if depth == 0:
            break
    word = re.search(r"([A-Za-z_$][\w$]*)?\s*$", head[:k]).group(1)
    if word in NOT_FUNCTIONS:
        return None
    return "(anonymous)" if word in (None, "function") else word


def contract_properties(typedef: str) -> list[str]:
    """The property names js/contract.js gives one of its typedefs."""
    text = (REPORT / "js" / script.CONTRACT).read_text(encoding="utf-8")
    found = re.search(rf"^ \* @typedef \{{object\}} {typedef}$(.*?)\*/", text, re.DOTALL | re.MULTILINE)
    assert found is not None, f"contract.js has no typedef {typedef}"
    return re.findall(r"^ \* @property \{.+?\} \[?(\w+)\]?(?: -|$)", found.group(1), re.MULTILINE)


def test_the_contract_s_typedefs_are_read_whole() -> None:
    assert contract_properties("PackedArray") == ["blob", "dtype", "shape", "encoding", "delta"]
    assert "marker" in contract_properties("Payload") and "clientPosition" in contract_properties("LayerlapseHook")


def test_the_scan_finds_functions_and_skips_strings_comments_and_regular_expressions() -> None:
    text = ('function outer(a) {\n  // a } in a comment\n  const s = "}{", t = `${"}"}`, r = /[{}"\']/g;\n'
            '  if (a) { return 1; }\n  items.forEach((x) => {\n    x();\n  });\n  return {load(i) {\n    return i;\n'
            '  }};\n}\n')
    assert sorted(js_functions(text)) == [("(arrow)", 3), ("load", 3), ("outer", 11)]


@pytest.mark.parametrize("path", sorted((REPORT / "js").glob("*.js")), ids=lambda path: path.name)
def test_no_javascript_function_is_longer_than_a_screenful_or_two(path: Path) -> None:
    long = [(name, lines) for name, lines in js_functions(path.read_text(encoding="utf-8"))
            if lines > MAX_FUNCTION_LINES and name not in MEASURED_EXCEPTIONS]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_each_measured_exception_is_a_function_that_exists() -> None:
    names = {name for path in (REPORT / "js").glob("*.js") for name, _ in js_functions(path.read_text("utf-8"))}
    assert set(MEASURED_EXCEPTIONS) <= names


def test_the_page_script_joins_every_part_once() -> None:
    joined = [*script.POINT_LAYER_PARTS, script.ENTRY, *script.REPORT_PARTS, script.LIVE]
    assert len(set(joined)) == len(joined)
    on_disk = {path.name for path in (REPORT / "js").glob("*.js")} - {script.CONTRACT}
    assert set(joined) == on_disk
