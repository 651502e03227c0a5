//! What a bucket needs for direct uploads, checked from its metadata (`buckets.get`).
//!
//! [`check_bucket`] turns [`BucketFacts`] and what the application expects ([`DoctorExpectations`]) into
//! [`Finding`]s, each with a message that says what to change:
//!
//! * **CORS**: a rule for the app's origin allowing `PUT` (and `GET`, `OPTIONS`-preflighted headers) and
//!   exposing the response headers the widget reads (`Content-Type`, `Range`, `ETag`,
//!   `x-goog-generation`, `Location`).
//! * **Versioning**: reported; required only for the `-versioned` overwrite modes.
//! * **Uniform bucket-level access vs `default_acl`**: a predefined ACL on writes fails on a bucket
//!   with uniform access.
//! * **Lifecycle**: a `Delete` rule whose `matchesPrefix` covers the ingress prefix, so abandoned temp
//!   uploads disappear.
//!
//! `gcloud-storage`'s `Bucket` type has no `matchesPrefix` in lifecycle conditions, so facts are read
//! from the raw JSON when there is one ([`BucketFacts::from_json`]); from the typed bucket
//! (`BucketFacts::from_bucket`) prefix conditions are unknown and reported as unverifiable.

use serde_json::Value;

use crate::config::StoreConfig;
use crate::{Error, Result};

/// Response headers the widget reads from the bucket.
pub(crate) const NEEDED_RESPONSE_HEADERS: &[&str] = &[
    "Content-Type",
    "Content-Range",
    "Range",
    "ETag",
    "x-goog-generation",
    "x-goog-content-length-range",
    "x-goog-if-generation-match",
    "Location",
];

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Works, but should be changed.
    Warning,
    /// Direct uploads (or saves) will fail until this is fixed.
    Error,
}

/// One result of [`check_bucket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which check (`cors`, `versioning`, `uniform_access`, `lifecycle`).
    pub check: &'static str,
    /// How bad.
    pub severity: Severity,
    /// What was found and what to do.
    pub message: String,
}

/// One CORS rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsRule {
    /// Allowed origins (`*` for any).
    pub origins: Vec<String>,
    /// Allowed methods.
    pub methods: Vec<String>,
    /// Exposed response headers.
    pub response_headers: Vec<String>,
}

/// One lifecycle rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LifecycleRule {
    /// Action type (`Delete`, `SetStorageClass`, ...).
    pub action: String,
    /// `condition.age` in days.
    pub age: Option<i64>,
    /// `condition.matchesPrefix`; `None` when the rule has none or it could not be read.
    pub matches_prefix: Option<Vec<String>>,
}

/// The parts of a bucket's metadata the checks read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketFacts {
    /// Bucket name.
    pub name: String,
    /// CORS rules.
    pub cors: Vec<CorsRule>,
    /// Object versioning on.
    pub versioning: bool,
    /// Uniform bucket-level access on.
    pub uniform_access: bool,
    /// Lifecycle rules.
    pub lifecycle: Vec<LifecycleRule>,
    /// False when lifecycle prefix conditions could not be read (typed `Bucket`).
    pub lifecycle_prefixes_known: bool,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

impl BucketFacts {
    /// From the bucket resource JSON (`GET /storage/v1/b/<bucket>`).
    pub fn from_json(bucket: &Value) -> Self {
        let cors = bucket["cors"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| CorsRule {
                        origins: strings(&r["origin"]),
                        methods: strings(&r["method"]),
                        response_headers: strings(&r["responseHeader"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lifecycle = bucket["lifecycle"]["rule"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| LifecycleRule {
                        action: r["action"]["type"].as_str().unwrap_or_default().to_string(),
                        age: r["condition"]["age"].as_i64(),
                        matches_prefix: r["condition"].get("matchesPrefix").map(strings),
                    })
                    .collect()
            })
            .unwrap_or_default();
        BucketFacts {
            name: bucket["name"].as_str().unwrap_or_default().to_string(),
            cors,
            versioning: bucket["versioning"]["enabled"].as_bool().unwrap_or(false),
            uniform_access: bucket["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"]
                .as_bool()
                .unwrap_or(false),
            lifecycle,
            lifecycle_prefixes_known: true,
        }
    }

    /// From `gcloud-storage`'s typed bucket (lifecycle prefixes unknown: the type drops them).
    pub(crate) fn from_bucket(bucket: &gcloud_storage::http::buckets::Bucket) -> Self {
        let json = serde_json::to_value(bucket).unwrap_or(Value::Null);
        let has_rules = bucket.lifecycle.as_ref().is_some_and(|l| !l.rule.is_empty());
        BucketFacts { lifecycle_prefixes_known: !has_rules, ..Self::from_json(&json) }
    }
}

/// What the application needs from the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DoctorExpectations {
    /// Origins the app is served from (`https://app.example.com`), which upload from browsers.
    pub app_origins: Vec<String>,
    /// The ingress prefix as a full object-key prefix (store location included), e.g. `media/ingress/`.
    pub ingress_prefix: String,
    /// The store's `default_acl` / `object_parameters.acl`, if any.
    pub default_acl: Option<String>,
    /// True when a field uses a `-versioned` overwrite mode.
    pub needs_versioning: bool,
}

impl DoctorExpectations {
    /// Expectations for `config` with uploads under `ingress_prefix` (relative to the store's location),
    /// from `app_origins`.
    pub fn for_store(config: &StoreConfig, ingress_prefix: &str, app_origins: Vec<String>) -> Result<Self> {
        let location = crate::storage::naming::normalize_location("doctor", &config.location)?;
        Ok(Self {
            app_origins,
            ingress_prefix: format!("{location}{}", ingress_prefix.trim_start_matches('/')),
            default_acl: config.object_parameters.acl.clone().or_else(|| config.default_acl.clone()),
            needs_versioning: false,
        })
    }
}

fn contains_ci(list: &[String], want: &str) -> bool {
    list.iter().any(|s| s == "*" || s.eq_ignore_ascii_case(want))
}

/// Check `bucket` against `expect`. Every check yields one finding (`Ok` when it passed).
pub fn check_bucket(bucket: &BucketFacts, expect: &DoctorExpectations) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |check, severity, message: String| Finding { check, severity, message };

    // CORS, per origin.
    for origin in &expect.app_origins {
        let origin_rules: Vec<&CorsRule> =
            bucket.cors.iter().filter(|r| contains_ci(&r.origins, origin.trim_end_matches('/'))).collect();
        if origin_rules.is_empty() {
            out.push(finding(
                "cors",
                Severity::Error,
                format!(
                    "no CORS rule for origin {origin}: browsers cannot upload to gs://{}. Apply the CORS JSON from \
                     docs/direct-uploads.md with `gcloud storage buckets update gs://{} --cors-file=cors.json`",
                    bucket.name, bucket.name
                ),
            ));
            continue;
        }
        let put_rule = origin_rules.iter().find(|r| contains_ci(&r.methods, "PUT"));
        let Some(rule) = put_rule else {
            out.push(finding(
                "cors",
                Severity::Error,
                format!("the CORS rule for {origin} does not allow PUT; add \"PUT\" to its \"method\" list"),
            ));
            continue;
        };
        let missing: Vec<&str> =
            NEEDED_RESPONSE_HEADERS.iter().copied().filter(|h| !contains_ci(&rule.response_headers, h)).collect();
        if missing.is_empty() {
            out.push(finding(
                "cors",
                Severity::Ok,
                format!("CORS allows PUT from {origin} and exposes the needed headers"),
            ));
        } else {
            let severity = if missing.iter().any(|h| matches!(*h, "Content-Type" | "Range" | "Content-Range")) {
                Severity::Error
            } else {
                Severity::Warning
            };
            out.push(finding(
                "cors",
                severity,
                format!("the CORS rule for {origin} does not expose {missing:?}; add them to \"responseHeader\""),
            ));
        }
    }
    if expect.app_origins.is_empty() {
        out.push(finding(
            "cors",
            Severity::Warning,
            "no app origin given, CORS not checked; pass the origin your pages are served from".into(),
        ));
    }

    // Versioning.
    out.push(match (bucket.versioning, expect.needs_versioning) {
        (true, _) => finding("versioning", Severity::Ok, "object versioning is on".into()),
        (false, true) => finding(
            "versioning",
            Severity::Error,
            format!(
                "a field uses a -versioned overwrite mode but versioning is off; run `gcloud storage buckets update \
                 gs://{} --versioning`",
                bucket.name
            ),
        ),
        (false, false) => finding(
            "versioning",
            Severity::Ok,
            "object versioning is off (fine unless a field uses a -versioned overwrite mode)".into(),
        ),
    });

    // Uniform bucket-level access vs a predefined ACL.
    out.push(match (&expect.default_acl, bucket.uniform_access) {
        (Some(acl), true) => finding(
            "uniform_access",
            Severity::Error,
            format!(
                "the store sets the predefined ACL {acl:?} but the bucket has uniform bucket-level access, so every \
                 write fails; remove default_acl (grant access with IAM) or turn uniform access off"
            ),
        ),
        (None, false) => finding(
            "uniform_access",
            Severity::Warning,
            "uniform bucket-level access is off; turn it on and grant access with IAM unless you need object ACLs"
                .into(),
        ),
        _ => finding("uniform_access", Severity::Ok, "access control mode matches the store's ACL setting".into()),
    });

    // Lifecycle on the ingress prefix.
    let deletes: Vec<&LifecycleRule> = bucket.lifecycle.iter().filter(|r| r.action == "Delete").collect();
    let covering = deletes.iter().find(|r| match &r.matches_prefix {
        Some(prefixes) => prefixes.iter().any(|p| expect.ingress_prefix.starts_with(p.as_str())),
        None => false,
    });
    out.push(if let Some(rule) = covering {
        finding(
            "lifecycle",
            Severity::Ok,
            format!(
                "a Delete rule{} covers the ingress prefix {:?}",
                rule.age.map(|a| format!(" (age {a} days)")).unwrap_or_default(),
                expect.ingress_prefix
            ),
        )
    } else if !bucket.lifecycle_prefixes_known && !deletes.is_empty() {
        finding(
            "lifecycle",
            Severity::Warning,
            format!(
                "the bucket has Delete rules but their prefixes could not be read; check that one has matchesPrefix \
                 {:?}",
                expect.ingress_prefix
            ),
        )
    } else {
        finding(
            "lifecycle",
            Severity::Warning,
            format!(
                "no lifecycle Delete rule with matchesPrefix {:?}: abandoned uploads stay forever. Add \
                 {{\"action\": {{\"type\": \"Delete\"}}, \"condition\": {{\"age\": 1, \"matchesPrefix\": [{:?}]}}}}",
                expect.ingress_prefix, expect.ingress_prefix
            ),
        )
    });
    out
}

/// Read the bucket of a GCS `config` with `gcloud-storage`'s `get_bucket`, over the same connection (endpoint
/// and credentials) the GCS store uses: anonymous on an emulator.
pub async fn fetch_bucket(config: &StoreConfig) -> Result<BucketFacts> {
    use crate::storage::gcs::client::{Connection, default_http_client};
    let connection = Connection::new(&config.bucket_name, config, default_http_client()?).await?;
    let client = connection.client;
    let request = gcloud_storage::http::buckets::get::GetBucketRequest {
        bucket: config.bucket_name.clone(),
        ..Default::default()
    };
    let bucket = client.get_bucket(&request).await.map_err(|e| Error::Backend {
        backend: "gcs",
        store: config.bucket_name.clone(),
        status: None,
        retryable: false,
        source: Box::new(e),
    })?;
    Ok(BucketFacts::from_bucket(&bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "name": "media-bucket", "id": "media-bucket", "projectNumber": "1", "metageneration": "3",
      "location": "EU", "storageClass": "STANDARD", "etag": "CAM=", "locationType": "multi-region",
      "cors": [{"origin": ["https://app.example.com"], "method": ["GET", "PUT", "OPTIONS"],
                "responseHeader": ["Content-Type", "Content-Range", "Range", "ETag", "x-goog-generation",
                                   "x-goog-content-length-range", "x-goog-if-generation-match", "Location"],
                "maxAgeSeconds": 3600}],
      "versioning": {"enabled": true},
      "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}},
      "lifecycle": {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 1, "matchesPrefix": ["media/ingress/"]}}]}
    }"#;

    const BAD: &str = r#"{
      "name": "media-bucket",
      "cors": [{"origin": ["https://other.example.com"], "method": ["GET"], "responseHeader": []},
               {"origin": ["https://app.example.com"], "method": ["GET"], "responseHeader": []}],
      "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}},
      "lifecycle": {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefix": ["logs/"]}}]}
    }"#;

    fn expect(acl: Option<&str>) -> DoctorExpectations {
        DoctorExpectations {
            app_origins: vec!["https://app.example.com".into()],
            ingress_prefix: "media/ingress/".into(),
            default_acl: acl.map(str::to_string),
            needs_versioning: true,
        }
    }

    fn severity(findings: &[Finding], check: &str) -> Severity {
        findings.iter().filter(|f| f.check == check).map(|f| f.severity).max().unwrap()
    }

    #[test]
    fn a_good_bucket_passes() {
        let facts = BucketFacts::from_json(&serde_json::from_str(GOOD).unwrap());
        let findings = check_bucket(&facts, &expect(None));
        assert!(findings.iter().all(|f| f.severity == Severity::Ok), "{findings:#?}");
        assert_eq!(findings.len(), 4);
    }

    #[test]
    fn a_bad_bucket_says_what_to_fix() {
        let facts = BucketFacts::from_json(&serde_json::from_str(BAD).unwrap());
        let findings = check_bucket(&facts, &expect(Some("publicRead")));
        assert_eq!(severity(&findings, "cors"), Severity::Error);
        assert!(findings.iter().any(|f| f.check == "cors" && f.message.contains("does not allow PUT")));
        assert_eq!(severity(&findings, "versioning"), Severity::Error);
        assert_eq!(severity(&findings, "uniform_access"), Severity::Error);
        let lifecycle = findings.iter().find(|f| f.check == "lifecycle").unwrap();
        assert_eq!(lifecycle.severity, Severity::Warning);
        assert!(lifecycle.message.contains("matchesPrefix"), "{}", lifecycle.message);
        let no_cors = check_bucket(&BucketFacts { name: "b".into(), ..Default::default() }, &expect(None));
        assert!(no_cors.iter().any(|f| f.check == "cors" && f.message.contains("--cors-file")));
    }

    #[test]
    fn headers_missing_and_typed_bucket() {
        let mut facts = BucketFacts::from_json(&serde_json::from_str(GOOD).unwrap());
        facts.cors[0].response_headers = vec!["Content-Type".into(), "Content-Range".into(), "Range".into()];
        let findings = check_bucket(&facts, &expect(None));
        assert_eq!(severity(&findings, "cors"), Severity::Warning);
        let typed: gcloud_storage::http::buckets::Bucket = serde_json::from_str(GOOD).unwrap();
        let facts = BucketFacts::from_bucket(&typed);
        assert!(facts.versioning && facts.uniform_access && !facts.lifecycle_prefixes_known);
        let findings = check_bucket(&facts, &expect(None));
        assert!(findings.iter().any(|f| f.check == "lifecycle" && f.message.contains("could not be read")));
    }
}
