//! `scripts/local-lambda`, the README's way to run the function locally: it refuses a busy invoke
//! port (a second `cargo lambda watch` there would exit silently and every later invoke would reach
//! the first one), before building or starting anything.

mod common;

use std::net::TcpListener;
use std::process::Command;

#[test]
fn a_busy_invoke_port_is_refused_with_what_to_do() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let output = Command::new(common::repo_dir().join("scripts/local-lambda"))
        .args(["--invoke-port", &port])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("port {port} is in use")),
        "{stderr}"
    );
    assert!(stderr.contains("--invoke-port"), "{stderr}");
    // It stopped before building anything.
    assert!(!stderr.contains("building the function"), "{stderr}");
    drop(busy);
}

#[test]
fn unknown_arguments_are_a_usage_error() {
    let output = Command::new(common::repo_dir().join("scripts/local-lambda"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
