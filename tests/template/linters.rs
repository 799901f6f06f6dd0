//! Linters and scanners: `sam validate --lint`, cfn-lint and checkov accept every template variant.

use super::*;

#[test]
fn sam_validate_accepts_the_template() {
    let Some(sam) = find_tool("sam") else {
        missing("`sam` (AWS SAM CLI) is not installed: cannot validate template.yaml");
        return;
    };
    // Both modes, because they check different things: plain `validate` runs the SAM translator
    // (which rejects, say, a rule DeadLetterConfig with both Type and Arn, which lint accepts), and
    // `--lint` runs cfn-lint's rules.
    // The template as a single account and as an organization deploys it, and the forwarder
    // (plain CloudFormation, which sam validates too).
    for template in [
        template_path(),
        organization_variant_path().to_owned(),
        s3_variant_path().to_owned(),
        forwarder_path(),
    ] {
        for args in [&["validate"][..], &["validate", "--lint"][..]] {
            let out = run(
                "sam validate",
                tool_command(&sam)
                    .args(args)
                    .arg("--template")
                    .arg(&template),
                5 * MINUTE,
            );
            assert!(
                out.status.success(),
                "`sam {}` rejects {}: {}",
                args.join(" "),
                template.display(),
                out.report()
            );
        }
    }
}

#[test]
fn cfn_lint_accepts_the_template_and_what_it_deploys() {
    let Some(cfn_lint) = find_tool("cfn-lint") else {
        missing("`cfn-lint` is not installed: cannot lint template.yaml");
        return;
    };
    let lint = |path: &Path, what: &str| {
        let out = run(
            "cfn-lint",
            tool_command(&cfn_lint).arg("--").arg(path),
            5 * MINUTE,
        );
        assert!(
            out.status.success(),
            "cfn-lint finds problems in {what}: {}",
            out.report()
        );
    };
    lint(&template_path(), "template.yaml");
    // With organization mode and account names as defaults: cfn-lint also checks that the
    // defaults satisfy their AllowedPattern (the AccountNames pattern, say).
    lint(
        organization_variant_path(),
        "template.yaml in organization mode",
    );
    lint(s3_variant_path(), "template.yaml in S3 mode");
    lint(&forwarder_path(), "deploy/forwarder.yaml");
    let Some(deployed) = deployed_template() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let transformed = dir.path().join("transformed.json");
    std::fs::write(&transformed, deployed.to_string()).expect("write the transformed template");
    lint(
        &transformed,
        "the transformed template (the CloudFormation SAM deploys)",
    );
}

/// Runs checkov on `path` and returns its report for the CloudFormation framework.
pub(crate) fn checkov_report(checkov: &Path, path: &Path) -> Value {
    let out = run(
        "checkov",
        tool_command(checkov)
            .args([
                "--framework",
                "cloudformation",
                "--skip-download",
                "--output",
                "json",
                "--file",
            ])
            .arg(path),
        10 * MINUTE,
    );
    // checkov exits 1 when a check fails; the report says which, so read it either way.
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report for {} ({e}): {}",
            path.display(),
            out.report()
        )
    });
    let report = match report {
        Value::Array(mut reports) if reports.len() == 1 => reports.remove(0),
        other => other,
    };
    assert_eq!(
        report["check_type"],
        "cloudformation",
        "unexpected checkov report for {}: {report}",
        path.display()
    );
    report
}

#[test]
fn checkov_passes_and_every_skip_is_justified_where_it_applies() {
    let Some(checkov) = find_tool("checkov") else {
        missing("`checkov` is not installed: cannot scan template.yaml");
        return;
    };
    let Some(source) = source_template() else {
        return;
    };
    let Some(deployed) = deployed_template() else {
        return;
    };
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let transformed = dir.path().join("transformed.json");
    std::fs::write(&transformed, deployed.to_string()).expect("write the transformed template");

    // (path, template, what, written by hand: where a stale skip can be)
    for (path, template, what, source_file) in [
        (template_path(), source, "template.yaml", true),
        (transformed, deployed, "the transformed template", false),
        (
            organization_variant_path().to_owned(),
            source,
            "template.yaml in organization mode",
            false,
        ),
        (
            s3_variant_path().to_owned(),
            source,
            "template.yaml in S3 mode",
            false,
        ),
        (forwarder_path(), forwarder, "deploy/forwarder.yaml", true),
    ] {
        let report = checkov_report(&checkov, &path);
        let summary = &report["summary"];
        assert_eq!(
            summary["parsing_errors"], 0,
            "checkov could not parse {what}: {summary}"
        );
        assert!(
            summary["resource_count"].as_u64() > Some(0) && summary["passed"].as_u64() > Some(0),
            "checkov checked nothing in {what} (a template it cannot read passes vacuously): \
             {summary}"
        );
        let failed: Vec<String> = as_list(&report["results"]["failed_checks"])
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({})",
                    c["check_id"].as_str().unwrap_or("?"),
                    c["resource"].as_str().unwrap_or("?"),
                    c["check_name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        assert!(
            failed.is_empty(),
            "checkov fails {what}:\n  {}",
            failed.join("\n  ")
        );

        let skipped = as_list(&report["results"]["skipped_checks"]);
        for check in &skipped {
            let reason = check["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or("");
            assert!(
                reason.trim().len() >= 20,
                "checkov skip {} on {} in {what} has no real reason next to it: {reason:?}",
                check["check_id"].as_str().unwrap_or("?"),
                check["resource"].as_str().unwrap_or("?")
            );
        }

        // A declared skip that checkov does not use is stale: the check was renamed or no longer
        // applies, and the comment now justifies nothing. (In the transformed template SAM copies
        // the function's metadata onto helper resources, where no Lambda check runs.)
        if source_file {
            let used: BTreeSet<(String, String)> = skipped
                .iter()
                .map(|c| {
                    let resource = c["resource"].as_str().unwrap_or("");
                    let id = resource.rsplit('.').next().unwrap_or(resource);
                    (
                        c["check_id"].as_str().unwrap_or("").to_owned(),
                        id.to_owned(),
                    )
                })
                .collect();
            for (id, resource) in resources(template) {
                for skip in as_list(&resource["Metadata"]["checkov"]["skip"]) {
                    let check = skip["id"].as_str().unwrap_or("").to_owned();
                    assert!(
                        used.contains(&(check.clone(), id.clone())),
                        "{id} skips checkov check {check}, but checkov does not report it as \
                         skipped there: remove the stale skip"
                    );
                }
            }
        }
    }
}
