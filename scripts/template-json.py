#!/usr/bin/env python3
"""Print a CloudFormation/SAM template as JSON, optionally after the SAM transform.

Owns: turning `template.yaml` (with short tags such as !Ref, !GetAtt, !Sub)
into plain JSON that tests can inspect without a YAML parser, and, with
`--transform`, into the CloudFormation that `sam deploy` would submit (what
the SAM translator generates, offline). Intrinsics stay as their long JSON
forms ({"Ref": ...}, {"Fn::GetAtt": [...]}, ...).

Deliberately does not: validate or judge the template (cfn-lint, sam validate
and checkov do that), resolve parameters or conditions, or call AWS.

Usage: template-json.py [--transform] TEMPLATE
Exit codes: 0 ok, 1 the template could not be read or transformed,
3 a required Python package is missing (cfn-lint, aws-sam-translator).
"""

import argparse
import json
import os
import sys

MISSING_PACKAGE = 3


def decode(path):
    """The template as Python data; short tags become their long JSON forms."""
    from cfnlint.decode import decode as cfn_decode

    template, matches = cfn_decode(path)
    if matches:
        problems = "; ".join(f"line {m.linenumber}: {m.message}" for m in matches)
        raise ValueError(f"{path}: cannot decode template: {problems}")
    if not isinstance(template, dict):
        raise ValueError(f"{path}: the template is not a mapping")
    # cfn-lint's node types carry line numbers; a JSON round trip drops them.
    return json.loads(json.dumps(template))


class NoManagedPolicies:
    """Managed-policy loader that never calls IAM.

    The SAM translator asks IAM for managed policy ARNs only when a template
    names policies by short name; this template names none, and a transform
    that needed the network would not be a test.
    """

    def load(self):
        return {}


def sam_transform(template):
    # The translator reads the region (for the partition) from a boto session;
    # pin it so the output does not depend on the caller's AWS configuration.
    # Placeholders, never deployed.
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    from samtranslator.translator.transform import transform

    parameters = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    return transform(as_packaged(template), parameters, NoManagedPolicies())


def as_packaged(template):
    """The template as `sam package` leaves it: local code paths become S3 URIs.

    The translator accepts only S3 locations; which bucket does not change
    anything the tests look at.
    """
    for logical_id, resource in template.get("Resources", {}).items():
        if not isinstance(resource, dict):
            continue
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        code_uri = properties.get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            properties["CodeUri"] = f"s3://packaged-code/{logical_id}.zip"
    return template


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template")
    parser.add_argument(
        "--transform",
        action="store_true",
        help="apply the SAM transform (offline) before printing",
    )
    args = parser.parse_args()
    try:
        template = decode(args.template)
        if args.transform:
            template = sam_transform(template)
    except ModuleNotFoundError as missing:
        print(
            f"template-json: missing Python package {missing.name!r}; "
            "install scripts/requirements.txt (cfn-lint, aws-sam-cli)",
            file=sys.stderr,
        )
        return MISSING_PACKAGE
    except Exception as error:  # the message is the whole report
        print(f"template-json: {args.template}: {error}", file=sys.stderr)
        return 1
    json.dump(template, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
