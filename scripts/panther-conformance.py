#!/usr/bin/env python3
"""Runs Panther's own rule AWS.Lambda.UpdateFunctionCode, through Panther's engine, over CloudTrail records.

The oracle of tests/conformance.rs. Nothing of the rule is re-implemented here: the rule file, its data
model and the shared modules they import (global_helpers/) are Panther's, unmodified, from the --oracle
folder (default ../shared/oracle/panther beside the repo), and they run through `panther_core` (PyPI)
exactly as Panther runs them: `Rule`, `DataModel`, records wrapped in `PantherEvent`,
`Rule.run(..., batch_mode=True)`.

Input: NDJSON, one CloudTrail record per line (the record itself, not an EventBridge envelope), from PATH or
stdin. Output: one JSON line per input line, in order:

    {"line": N, "matched": true|false|null, "title": "..."|null, "rule_error": "..."|null,
     "title_error": "..."|null}

- matched: what rule() returned; null when rule() raised (rule_error says what), which Panther reports as a
  rule error, not a verdict.
- title: the alert title Panther would give, present exactly when matched is true. In batch mode an
  exception in title() makes the title the rule id; title_error then says what title() raised.
- A line that is not a JSON object gets matched null and a rule_error starting with "input:".

Before the records, the rule's own tests (the `Tests` of its .yml) run through the same setup; the
script exits 2 when one does not get its expected result, so a broken setup cannot pass for Panther.

Usage: panther-conformance.py [--oracle DIR] [PATH|-]
"""

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile

# Panther's modules are imported from the oracle folder, which is read-only test input: no __pycache__.
sys.dont_write_bytecode = True

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULE_FILE = os.path.join("rules", "aws_cloudtrail_rules", "aws_overwrite_lambda_code")
DATA_MODEL_FILE = os.path.join("data_models", "aws_cloudtrail_data_model")


class TitleErrors(logging.Handler):
    """Collects what title() raised: in batch mode panther_core logs it and uses the rule id instead."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.errors = []

    def emit(self, record):
        if str(record.msg).startswith("title method") and record.args:
            self.errors.append(describe(record.args[-1]))


def fail(message):
    print(f"panther-conformance: {message}", file=sys.stderr)
    sys.exit(2)


def describe(error):
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


def load_oracle(oracle):
    """Panther's rule and the AWS.CloudTrail data model, loaded by panther_core."""
    import yaml  # pylint: disable=import-outside-toplevel
    from panther_core.data_model import DataModel  # pylint: disable=import-outside-toplevel
    from panther_core.rule import Rule  # pylint: disable=import-outside-toplevel

    sys.path.insert(0, os.path.join(oracle, "global_helpers"))

    with open(os.path.join(oracle, DATA_MODEL_FILE + ".yml"), encoding="utf-8") as f:
        model_spec = yaml.safe_load(f)
    with open(os.path.join(oracle, DATA_MODEL_FILE + ".py"), encoding="utf-8") as f:
        model_body = f.read()
    data_model = DataModel(
        {
            "id": model_spec["DataModelID"],
            "versionId": "oracle",
            "body": model_body,
            # panther_core reads the mapping keys in lower case (name, path, method).
            "mappings": [{k.lower(): v for k, v in m.items()} for m in model_spec["Mappings"]],
        }
    )

    with open(os.path.join(oracle, RULE_FILE + ".yml"), encoding="utf-8") as f:
        rule_spec = yaml.safe_load(f)
    rule = Rule(
        {
            "id": rule_spec["RuleID"],
            "analysisType": "RULE",
            "versionId": "oracle",
            "path": os.path.join(oracle, RULE_FILE + ".py"),
            "severity": rule_spec["Severity"].upper(),
            "dedupPeriodMinutes": rule_spec.get("DedupPeriodMinutes", 60),
        }
    )
    if rule.setup_exception:
        fail(f"the rule does not load: {rule.setup_exception!r}")
    return rule, data_model, rule_spec


def run(rule, data_model, title_errors, record):
    """Panther's outcome for one record, as the output line's fields (without "line")."""
    from panther_core.enriched_event import PantherEvent  # pylint: disable=import-outside-toplevel

    title_errors.errors.clear()
    result = rule.run(PantherEvent(record, data_model), {}, {}, batch_mode=True)
    if result.detection_exception is not None:
        return {
            "matched": None,
            "title": None,
            "rule_error": describe(result.detection_exception),
            "title_error": None,
        }
    matched = result.detection_output
    return {
        "matched": matched,
        "title": result.title_output if matched else None,
        "rule_error": None,
        "title_error": title_errors.errors[0] if title_errors.errors else None,
    }


def check_rule_tests(rule, data_model, title_errors, rule_spec):
    """The rule's own tests, run through this setup: proof that it runs the rule as Panther does."""
    for test in rule_spec.get("Tests", []):
        outcome = run(rule, data_model, title_errors, test["Log"])
        if outcome["matched"] is not test["ExpectedResult"]:
            fail(
                f"the rule's own test {test['Name']!r} expects {test['ExpectedResult']}, "
                f"got {outcome}: the setup is broken"
            )


def outcomes(rule, data_model, title_errors, lines):
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
        except ValueError as error:
            record, problem = None, f"input: not JSON: {error}"
        else:
            problem = None if isinstance(record, dict) else "input: not a JSON object"
        if problem:
            fields = {"matched": None, "title": None, "rule_error": problem, "title_error": None}
        else:
            fields = run(rule, data_model, title_errors, record)
        yield {"line": number, **fields}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--oracle",
        default=os.path.join(REPO, "..", "shared", "oracle", "panther"),
        help="Panther's rule folder (default: ../shared/oracle/panther beside the repo)",
    )
    parser.add_argument("input", nargs="?", default="-", help="NDJSON of CloudTrail records, or -")
    args = parser.parse_args()
    oracle = os.path.abspath(args.oracle)
    if not os.path.isfile(os.path.join(oracle, RULE_FILE + ".py")):
        fail(f"no Panther rule under {oracle}")

    # panther_core writes the data model's module (and any rule given as a body) under
    # tempfile.gettempdir(), read when it is imported: a private folder, removed at the end.
    private_tmp = tempfile.mkdtemp(prefix="panther-conformance-")
    tempfile.tempdir = private_tmp
    try:
        title_errors = TitleErrors()
        root = logging.getLogger()  # panther_core logs through the root logger
        root.addHandler(title_errors)
        root.setLevel(logging.INFO)

        rule, data_model, rule_spec = load_oracle(oracle)
        check_rule_tests(rule, data_model, title_errors, rule_spec)

        if args.input == "-":
            text = sys.stdin.buffer.read().decode("utf-8")
        else:
            with open(args.input, encoding="utf-8", newline="") as f:
                text = f.read()
        # Only "\n" ends a line: str.splitlines() would also split inside strings that hold a raw
        # U+2028, U+0085 or a form feed, which JSON allows.
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        out = sys.stdout
        for outcome in outcomes(rule, data_model, title_errors, lines):
            out.write(json.dumps(outcome) + "\n")
        out.flush()
    finally:
        tempfile.tempdir = None
        shutil.rmtree(private_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
