"""Hostile scenario files (issue 17): each is one true error line, fast, with no traceback.

Every input here once gave a traceback, a hang, a run-time crash after `validate` said ok,
an acceptance that could never hold, or a message that was wrong about the input. Each
test pins the file:line:col, the `$.path` and what the message says was found.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from vgic_actors.cli import main
from vgic_actors.scenario.source import MAX_FILE_BYTES

ERROR = re.compile(r"^error: (?P<file>.+?):(?P<line>\d+):(?P<col>\d+): "
                   r"(?P<path>\$\S*): expected (?P<expected>.+), got (?P<got>.*)$")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "s.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def one_error(tmp_path: Path, text: str | bytes) -> re.Match[str]:
    path = write(tmp_path, text)
    code, out, err = cli("validate", str(path))
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    m = ERROR.match(err.rstrip("\n"))
    assert m and m["file"] == str(path), err
    return m


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
TOO_DEEP = "description: " + "[" * 1000 + "]" * 1000 + "\n"


@pytest.mark.parametrize(("text", "path", "where", "expected", "got"), [
    ('vm: {vcpus: !!int "abc"}\n', "$.vm.vcpus", (1, 13), "without a YAML tag", "'!!int'"),
    ("vm: {vcpus: " + "9" * 5000 + "}\n", "$.vm.vcpus", (1, 13), "at most 64 bits", "'999"),
    ("description: &r [*r]\n", "$.description[0]", (1, 18), "alias", "*r inside its own"),
    (TOO_DEEP, "$.description" + "[0]" * 63, (1, 77), "nested at most 64", "deeper"),
    (LAUGHS, "$.f[0]", (6, 8), "at most 100000 values", "more"),
    ("guests:\n  vcpu0:\n    - for: {var: i, from: 0, to: 100000000000000000000, "
     "do: [{wfi: }]}\n", "$.guests.vcpu0[0].for.to", (3, 34), "at most 64 bits",
     "'100000000000000000000'"),
    ("guests:\n  vcpu0:\n    - for: {var: i, from: 0, to: 10000000, do: [{wfi: }]}\n",
     "$.guests.vcpu0[0].for.to", (3, 34), "a loop of at most 100000 values", "10000000"),
    ("guests:\n  vcpu0:\n    - repeat: {count: 10000, do: [{repeat: {count: 10000, "
     "do: [{wfi: }]}}]}\n", "$.guests.vcpu0[0].repeat", (3, 15), "at most 100000 operations",
     "10000 x 10000"),
    ("guests:\n  vcpu0:\n    - for: {var: i, from: 0, to: 99999, do: [{repeat: {count: 0, "
     "do: [{for: {var: j, from: 0, to: 99999, do: [{wfi: }]}}]}}]}\n",
     "$.guests.vcpu0[0].for.do[0].repeat.do[0].for.do[0]", (3, 111),
     "at most 200000 operations decoded", "more"),
    ('run: {strategy: "pct:²"}\n', "$.run.strategy", (1, 17), "pct:D", "'pct:²'"),
    ('run: {strategy: "pct:\uff13"}\n', "$.run.strategy", (1, 17), "pct:D", "'pct:\uff13'"),
    ('run: {strategy: "pct:1:99999999999999999999"}\n', "$.run.strategy", (1, 17),
     "K <= 1000000", "'pct:1:99999999999999999999'"),
    ("run: {max_steps: 5000000}\n", "$.run.max_steps", (1, 18), "<= 1000000", "5000000"),
    ("host:\n  - {do: inject_edge, intid: 70000}\n", "$.host[0].intid", (2, 30), "<= 65535",
     "70000"),
    ("host:\n  - {do: map_phys, vintid: 20, hwintid: 20, vcpu: 255}\n", "$.host[0].vcpu",
     (2, 51), "a vCPU index below 2", "255"),
    ("guests:\n  vcpu0:\n    - apr: {n: 3}\n", "$.guests.vcpu0[0].apr.n", (3, 16),
     "an APR index below 1", "3"),
    ("vm: {pri_bits: 6}\nguests:\n  vcpu0:\n    - apr_write: {value: 1, n: 2}\n",
     "$.guests.vcpu0[0].apr_write.n", (4, 32), "an APR index below 2", "2"),
    ("expect:\n  counters:\n    acks: {5000: 1}\n", "$.expect.counters.acks[5000]", (3, 18),
     "this VM has no INTID 5000", "1"),
    ('name: "\\ud800"\n', "$.name", (1, 7), "without lone surrogates", "U+D800"),
    ("irqs:\n  - {intid: no}\n", "$.irqs[0].intid", (2, 13), "an unambiguous value", "'no'"),
    ("irqs:\n  - {intid: 040}\n", "$.irqs[0].intid", (2, 13), "unambiguous integer", "'040'"),
    ("vm: {vcpus: 2}\n---\nvm: {vcpus: 1}\n", "$", (2, 1), "a single YAML document",
     "a second one"),
])
def test_a_hostile_file_is_one_true_line(tmp_path, text, path, where, expected, got):
    """Limits, exact types and run-time ranges: each refused where the problem is."""
    m = one_error(tmp_path, text)
    assert m["path"] == path
    assert (int(m["line"]), int(m["col"])) == where
    assert expected in m["expected"]
    assert m["got"].startswith(got)


def test_intid_no_does_not_claim_a_boolean_is_expected(tmp_path):
    """`intid: no`: the message does not say the field wants true or false."""
    m = one_error(tmp_path, "irqs:\n  - {intid: no}\n")
    assert not m["expected"].startswith("true or false")


@pytest.mark.parametrize(("call", "path", "expected", "got"), [
    ("{template: deferred_dir, with: {intid: not-a-number}}",
     "$.guests.vcpu1[0].call.with.intid", "an integer (argument intid of deferred_dir)",
     "'not-a-number'"),
    ("{template: deferred_dir, with: {intid: 32, bogus: 1}}",
     "$.guests.vcpu1[0].call.with.bogus", "an argument of template deferred_dir (intid)",
     "'bogus'"),
    ("deferred_dir", "$.guests.vcpu1[0].call",
     "argument intid of template deferred_dir (with: {intid: N})",
     "nothing"),
])
def test_template_arguments_are_checked_against_the_template(tmp_path, call, path, expected,
                                                              got):
    """Wrong type at the argument's own path; unknown and missing arguments refused."""
    m = one_error(tmp_path, f"guests:\n  vcpu1:\n    - call: {call}\n")
    assert (m["path"], m["expected"], m["got"]) == (path, expected, got)


def test_an_argument_a_nested_template_uses_is_known(tmp_path):
    """A template calling another passes its caller's arguments through."""
    text = ("templates:\n  outer:\n    - call: deferred_dir\n"
            "guests:\n  vcpu1:\n    - call: {template: outer, with: {intid: 32}}\n")
    code, _, err = cli("validate", str(write(tmp_path, text)))
    assert (code, err) == (0, "")


def test_an_implicit_date_is_text(tmp_path):
    """`name: 2001-02-30` is the text it looks like, not an impossible date."""
    code, out, err = cli("validate", str(write(tmp_path, "name: 2001-02-30\n")))
    assert (code, err) == (0, "") and "2001-02-30" in out


@pytest.mark.parametrize("separator", ["\u0085", "\r", "\u2028", "\u2029"])
def test_unicode_line_separators_do_not_shift_line_numbers(tmp_path, separator):
    """Lines are counted by newline as editors do: NEL, CR, U+2028 earlier change nothing."""
    m = one_error(tmp_path, f'description: "a{separator}b"\nvm: {{vcpus: x}}\n')
    assert (m["path"], m["line"], m["col"]) == ("$.vm.vcpus", "2", "13")


def test_a_non_utf8_file_names_the_byte_and_its_place(tmp_path):
    """A Latin-1 byte: line:col of the byte, and which byte it is."""
    m = one_error(tmp_path, b"name: x\ndescription: caf\xe9\n")
    assert (m["line"], m["col"], m["path"], m["got"]) == ("2", "17", "$", "byte 0xe9")


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    """A file beyond MAX_FILE_BYTES is refused without being read whole."""
    path = write(tmp_path, "# " + "x" * MAX_FILE_BYTES + "\n")
    code, _, err = cli("validate", str(path))
    assert code == 2 and f"at most {MAX_FILE_BYTES} bytes" in err and err.count("\n") == 1


def test_a_missing_value_is_called_nothing_not_null(tmp_path):
    """An absent final.vcpu of a PPI is reported as missing."""
    m = one_error(tmp_path, "expect:\n  final:\n    - {intid: 20, active: false}\n")
    assert m["path"] == "$.expect.final[0].vcpu" and m["got"] == "nothing"


@pytest.mark.parametrize("text", [
    "guests:\n  vcpu0:\n    - host: {do: inject_edge, intid: 65535, expect_errno: 22}\n",
    "host:\n  - {do: write_isactiver, intid: 70000, vcpu: 200, expect_errno: 22}\n",
    "name: 2001-02-30\n",
])
def test_what_validate_accepts_runs(tmp_path, text):
    """Accepted files at the edges of the ranges run to a verdict without a traceback."""
    path = write(tmp_path, text)
    assert cli("validate", str(path))[0] == 0
    code, _, err = cli("run", str(path), "--runs", "1")
    assert code in (0, 1) and "Traceback" not in err and "error" not in err
