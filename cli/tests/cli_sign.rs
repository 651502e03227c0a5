//! `sea-gcp sign-url` and `sea-gcp post-policy` through the built binary: every conformance vector, the
//! HMAC signer, and bad input (one clear line on stderr, non-zero exit, no panic).

use std::collections::BTreeMap;
use std::process::{Command, Output};

use serde_json::Value;

#[path = "../../tests/conformance_support/mod.rs"]
mod conformance_support;
use conformance_support::{expiration_secs, vectors};

/// The dummy key's path, as a command-line argument.
fn key_path() -> String {
    conformance_support::key_path().display().to_string()
}

/// The binary with a clean signing environment.
fn sea_gcp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sea-gcp"));
    for var in ["STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "SEA_GCP_HMAC_SECRET", "RUST_BACKTRACE"] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run sea-gcp")
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect())
        .unwrap_or_default()
}

/// Escape `=` and `\` in a KEY of KEY=VALUE.
fn key_arg(key: &str) -> String {
    key.replace('\\', r"\\").replace('=', r"\=")
}

fn style_flag(style: &str) -> &'static str {
    match style {
        "PATH_STYLE" => "path",
        "VIRTUAL_HOSTED_STYLE" => "virtual-hosted",
        "BUCKET_BOUND_HOSTNAME" => "bucket-bound-hostname",
        other => panic!("unknown urlStyle {other}"),
    }
}

/// Flags shared by both subcommands, from a vector's input.
fn target_flags(cmd: &mut Command, case: &Value) {
    cmd.args(["--private-key-file", &key_path()]);
    cmd.args(["--duration", &format!("{}s", expiration_secs(case))]);
    cmd.args(["--at", case["timestamp"].as_str().unwrap()]);
    let flags = [
        ("scheme", "--scheme"),
        ("hostname", "--hostname"),
        ("clientEndpoint", "--endpoint"),
        ("universeDomain", "--universe-domain"),
        ("bucketBoundHostname", "--bucket-bound-hostname"),
    ];
    for (field, flag) in flags {
        if let Some(v) = case.get(field).and_then(Value::as_str) {
            cmd.args([flag, v]);
        }
    }
    if let Some(style) = case.get("urlStyle").and_then(Value::as_str) {
        cmd.args(["--url-style", style_flag(style)]);
    }
    if let Some(emulator) = case.get("emulatorHostname").and_then(Value::as_str) {
        cmd.env("STORAGE_EMULATOR_HOST", emulator);
    }
}

#[test]
fn every_signed_url_vector_through_the_binary() {
    let v = vectors();
    let cases = v["signingV4Tests"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["description"].as_str().unwrap();
        let mut cmd = sea_gcp();
        let target = match case.get("object").and_then(Value::as_str) {
            Some(object) => format!("gs://{}/{object}", case["bucket"].as_str().unwrap()),
            None => format!("gs://{}", case["bucket"].as_str().unwrap()),
        };
        cmd.args(["sign-url", &target, "--http-verb", case["method"].as_str().unwrap(), "--format", "json"]);
        target_flags(&mut cmd, case);
        for (k, v) in str_map(case.get("headers")) {
            cmd.args(["--headers", &format!("{}={v}", key_arg(&k))]);
        }
        for (k, v) in str_map(case.get("queryParameters")) {
            cmd.args(["--query-params", &format!("{}={v}", key_arg(&k))]);
        }
        let out = run(&mut cmd);
        if !out.status.success() {
            failures.push(format!("{name}: exit {} {}", out.status, String::from_utf8_lossy(&out.stderr)));
            continue;
        }
        let got: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        for (field, want) in [
            ("url", "expectedUrl"),
            ("canonical_request", "expectedCanonicalRequest"),
            ("string_to_sign", "expectedStringToSign"),
        ] {
            if got[field] != case[want] {
                failures.push(format!("{name}: {field}\n  got:  {}\n  want: {}", got[field], case[want]));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn plain_output_is_the_url_alone() {
    let v = vectors();
    let case = &v["signingV4Tests"][0];
    let mut cmd = sea_gcp();
    cmd.args(["sign-url", "gs://test-bucket/test-object"]);
    target_flags(&mut cmd, case);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", case["expectedUrl"].as_str().unwrap()));
}

#[test]
fn every_post_policy_vector_through_the_binary() {
    let v = vectors();
    let cases = v["postPolicyV4Tests"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["description"].as_str().unwrap();
        let input = &case["policyInput"];
        let mut cmd = sea_gcp();
        let target = format!("gs://{}/{}", input["bucket"].as_str().unwrap(), input["object"].as_str().unwrap());
        cmd.args(["post-policy", &target]);
        target_flags(&mut cmd, input);
        for (k, v) in str_map(input.get("fields")) {
            cmd.args(["--field", &format!("{}={v}", key_arg(&k))]);
        }
        if let Some(conditions) = input.get("conditions").and_then(Value::as_object) {
            for (kind, args) in conditions {
                let op = match kind.as_str() {
                    "startsWith" => "starts-with",
                    "contentLengthRange" => "content-length-range",
                    other => panic!("condition kind {other} not mapped"),
                };
                let mut json = vec![Value::String(op.into())];
                json.extend(args.as_array().unwrap().iter().cloned());
                cmd.args(["--condition", &Value::Array(json).to_string()]);
            }
        }
        let out = run(&mut cmd);
        if !out.status.success() {
            failures.push(format!("{name}: exit {} {}", out.status, String::from_utf8_lossy(&out.stderr)));
            continue;
        }
        let got: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        let want = &case["policyOutput"];
        if got["url"] != want["url"] {
            failures.push(format!("{name}: url {} != {}", got["url"], want["url"]));
        }
        if str_map(got.get("fields")) != str_map(want.get("fields")) {
            failures.push(format!("{name}: fields\n  got:  {}\n  want: {}", got["fields"], want["fields"]));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn hmac_key_from_flag_and_env() {
    let out = run(sea_gcp()
        .args(["sign-url", "gs://b/o", "--hmac-access-id", "GOOG1EXAMPLE", "--at", "2026-01-01T00:00:00Z"])
        .env("SEA_GCP_HMAC_SECRET", "c2VjcmV0"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(url.starts_with("https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-HMAC-SHA256"), "{url}");
    assert!(url.contains("X-Goog-Credential=GOOG1EXAMPLE%2F20260101") && url.contains("X-Goog-Expires=3600"));
    let flag = run(sea_gcp().args([
        "sign-url",
        "gs://b/o",
        "--hmac-access-id",
        "GOOG1EXAMPLE",
        "--hmac-secret",
        "c2VjcmV0",
        "--at",
        "2026-01-01T00:00:00Z",
    ]));
    assert_eq!(String::from_utf8(flag.stdout).unwrap(), url);
}

/// Run, expect failure with `code`, one stderr line containing `needle`, no panic.
fn assert_fails(args: &[&str], code: i32, needle: &str) {
    let out = run(sea_gcp().args(args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got {stderr:?}");
    assert!(lines[0].starts_with("error:"), "{args:?}: {stderr}");
    assert!(lines[0].contains(needle), "{args:?}: {needle:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    let no_key = dir.path().join("nokey.json");
    std::fs::write(&no_key, r#"{"type":"service_account","client_email":"a@b.c"}"#).unwrap();
    let (bad_json, no_key) = (bad_json.display().to_string(), no_key.display().to_string());
    let key = key_path();

    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &bad_json], 1, "not valid JSON");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &no_key], 1, "field private_key missing");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", "/nonexistent/k.json"], 1, "cannot read");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &key, "--duration", "10x"], 2, "not understood");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &key, "--duration", "8d"], 2, "7 days");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &key, "--headers", "novalue"], 2, "KEY=VALUE");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &key, "--query-params", "=x"], 2, "empty KEY");
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &key, "--url-style", "sideways"], 2, "virtual-hosted");
    assert_fails(
        &["sign-url", "gs://b/o", "--private-key-file", &key, "--http-verb", "PATCH"],
        2,
        "unknown HTTP method",
    );
    assert_fails(&["sign-url", "gs://b/o", "--private-key-file", &key, "--at", "yesterday"], 2, "RFC 3339");
    assert_fails(&["sign-url", "b/o", "--private-key-file", &key], 1, "not a gs:// URL");
    assert_fails(
        &["sign-url", "gs://b/o", "--private-key-file", &key, "--url-style", "bucket-bound-hostname"],
        1,
        "bucket-bound hostname",
    );
    assert_fails(&["sign-url", "gs://b/o", "--hmac-access-id", "GOOG1X"], 2, "--hmac-secret");
    assert_fails(&["post-policy", "gs://b", "--private-key-file", &key], 1, "names no object");
    assert_fails(
        &["post-policy", "gs://b/o", "--private-key-file", &key, "--condition", "[\"starts-with\""],
        2,
        "not JSON",
    );
    assert_fails(
        &["post-policy", "gs://b/o", "--private-key-file", &key, "--condition", "[\"content-length-range\",9,1]"],
        2,
        "minimum above its maximum",
    );
    assert_fails(&["sign-url", "gs://b/o", "--bogus"], 2, "--bogus");
}

#[test]
fn auto_signer_uses_google_application_credentials_key() {
    let v = vectors();
    let case = &v["signingV4Tests"][0];
    let out = run(sea_gcp()
        .args(["sign-url", "gs://test-bucket/test-object", "--duration", "10s", "--at", "2019-02-01T09:00:00Z"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", key_path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end(), case["expectedUrl"].as_str().unwrap());
}

#[test]
fn auto_signer_off_google_cloud_explains_the_options() {
    let home = tempfile::tempdir().unwrap();
    let out = run(sea_gcp()
        .args(["sign-url", "gs://b/o"])
        .env("HOME", home.path())
        .env_remove("CLOUDSDK_CONFIG")
        .env("GCE_METADATA_HOST", "127.0.0.1:9"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("metadata server") && stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{stderr}");
    for flag in ["--private-key-file", "--hmac-access-id", "--impersonate-service-account"] {
        assert!(stderr.contains(flag), "the error names the CLI's own way to sign, {flag}: {stderr}");
    }
}
