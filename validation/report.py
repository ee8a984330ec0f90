"""The validation report: problems, files and checks; text, JSON and JUnit renderings.

JSON follows ``report.schema.json`` (shipped next to this module); JUnit has one test suite per
field folder and one test case per file and check group, failing when that check found errors.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from phangs_products.errors import Problem

from .rules import CHECKS, RULES, check_of

__all__ = ["REPORT_SCHEMA", "Report", "report_schema"]

REPORT_SCHEMA = "report.schema.json"
DELIVERY = "(delivery)"  # pseudo-file of problems that belong to no single file


def report_schema() -> dict[str, Any]:
    """The JSON Schema of :meth:`Report.to_json` documents."""
    text = (resources.files("phangs_products.validation") / REPORT_SCHEMA).read_text()
    return json.loads(text)


def problem_dict(problem: Problem) -> dict[str, Any]:
    """A problem as a plain dict (with its check group)."""
    out = dataclasses.asdict(problem)
    out["check"] = check_of(problem.rule)
    return out


@dataclass
class Report:
    """Outcome of validating a delivery.

    Attributes
    ----------
    path : str
        What was validated (delivery root or one field folder).
    problems : list of Problem
        Every problem; ``file`` is relative to ``path`` (``<field>/<name>`` for a root).
    files : dict
        ``{file: check groups run}`` for every file checked.
    strict : bool
        Warnings were turned into errors.
    seconds : float
        Wall time of the validation.
    """

    path: str
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    strict: bool = False
    seconds: float = 0.0

    # ------------------------------------------------------------------------------ summary
    @property
    def errors(self) -> list[Problem]:
        """Problems of severity error."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems of severity warning."""
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when there are errors."""
        return 0 if self.ok else 1

    def rules(self, severity: str | None = None) -> set[str]:
        """Rule ids reported (of one severity when given)."""
        return {p.rule for p in self.problems if severity is None or p.severity == severity}

    def summary(self) -> str:
        """One line: files, errors, warnings, time."""
        state = "OK" if self.ok else "FAILED"
        return (
            f"{state}: {len(self.files)} files checked, {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s) in {self.seconds:.2f} s"
            + (" (strict)" if self.strict else "")
        )

    def by_file(self) -> dict[str, list[Problem]]:
        """Problems grouped by file, files in name order (delivery-level ones first)."""
        groups: dict[str, list[Problem]] = defaultdict(list)
        for p in self.problems:
            groups[p.file or DELIVERY].append(p)
        return dict(sorted(groups.items(), key=lambda kv: (kv[0] != DELIVERY, kv[0])))

    # --------------------------------------------------------------------------------- text
    def to_text(self, colour: bool = False, warnings: bool = True) -> str:
        """Human report: problems grouped by file, one line each, and the summary.

        Parameters
        ----------
        colour : bool
            Use rich markup colours (for a terminal).
        warnings : bool
            Include warnings.
        """
        from rich.markup import escape

        lines = []
        for file, problems in self.by_file().items():
            shown = [p for p in problems if warnings or p.severity == "error"]
            if not shown:
                continue
            lines.append(f"[bold]{escape(file)}[/bold]" if colour else file)
            for p in sorted(shown, key=lambda p: (p.severity != "error", p.rule, p.where)):
                label = "ERROR  " if p.severity == "error" else "warning"
                loc = ": ".join(x for x in (p.schema, p.where) if x)
                text = f"{loc}: {p.message}" if loc else p.message
                if colour:
                    style = "red" if p.severity == "error" else "yellow"
                    lines.append(
                        f"  [{style}]{label}[/{style}] [cyan]{p.rule}[/cyan] {escape(text)}"
                    )
                else:
                    lines.append(f"  {label} {p.rule} {text}")
        summary = self.summary()
        if colour:
            summary = f"[{'green' if self.ok else 'red'} bold]{summary}[/]"
        lines.append(summary)
        return "\n".join(lines)

    def print(self, file: Any = None, colour: bool | None = None) -> None:
        """Print the text report (coloured when the output is a terminal)."""
        import sys

        from rich.console import Console

        stream = file or sys.stdout
        use = stream.isatty() if colour is None and hasattr(stream, "isatty") else bool(colour)
        if use:
            Console(file=stream, highlight=False, soft_wrap=True).print(self.to_text(colour=True))
        else:
            stream.write(self.to_text() + "\n")

    # --------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON document of ``report.schema.json``."""
        from phangs_products import __version__

        used = sorted(self.rules())
        return {
            "tool": "phangs-products validate",
            "version": __version__,
            "path": self.path,
            "strict": self.strict,
            "ok": self.ok,
            "summary": self.summary(),
            "counts": {
                "files": len(self.files),
                "errors": len(self.errors),
                "warnings": len(self.warnings),
            },
            "seconds": round(self.seconds, 4),
            "files": [{"name": n, "checks": list(c)} for n, c in sorted(self.files.items())],
            "problems": [problem_dict(p) for p in self.problems],
            "rules": {r: RULES[r].description for r in used if r in RULES},
        }

    def to_json(self, indent: int | None = 1) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent)

    # -------------------------------------------------------------------------------- JUnit
    def to_junit(self) -> str:
        """JUnit XML: a suite per field folder, a test case per file and check group."""
        per_case: dict[tuple[str, str], list[Problem]] = defaultdict(list)
        for p in self.problems:
            per_case[(p.file or DELIVERY, check_of(p.rule))].append(p)
        cases: dict[str, set[str]] = defaultdict(set)
        for name, checks in self.files.items():
            cases[name].update(checks)
        cases[DELIVERY].update(("consistency", "delivery"))
        for file, check in per_case:
            cases[file].add(check)
        suites: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for file, checks in cases.items():
            suite = file.split("/", 1)[0] if "/" in file else Path(self.path).name
            for check in sorted(checks, key=lambda c: CHECKS.index(c) if c in CHECKS else 99):
                suites[suite].append((file, check))
        root = ET.Element("testsuites", name="phangs-products validate")
        total_tests = total_fail = 0
        for suite_name in sorted(suites):
            entries = sorted(suites[suite_name])
            suite = ET.SubElement(root, "testsuite", name=suite_name)
            n_fail = 0
            for file, check in entries:
                case = ET.SubElement(suite, "testcase", classname=file, name=check, time="0")
                found = per_case.get((file, check), [])
                errors = [p for p in found if p.severity == "error"]
                if errors:
                    n_fail += 1
                    failure = ET.SubElement(
                        case,
                        "failure",
                        message=f"{len(errors)} error(s): {errors[0].rule}",
                        type=errors[0].rule,
                    )
                    failure.text = "\n".join(str(p) + f" [{p.rule}]" for p in errors)
                others = [p for p in found if p.severity != "error"]
                if others:
                    out = ET.SubElement(case, "system-out")
                    out.text = "\n".join(f"warning: {p} [{p.rule}]" for p in others)
            suite.set("tests", str(len(entries)))
            suite.set("failures", str(n_fail))
            suite.set("errors", "0")
            suite.set("skipped", "0")
            total_tests += len(entries)
            total_fail += n_fail
        root.set("tests", str(total_tests))
        root.set("failures", str(total_fail))
        root.set("errors", "0")
        root.set("time", f"{self.seconds:.3f}")
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
