//! `{:?}` of every type that holds a secret shows no secret: HMAC secrets in signing settings, store
//! configs and settings, the stores built from them, and the upload field registry, router and verifier.

use std::sync::Arc;

use sea_gcp::config::SigningConfig;
use sea_gcp::storage::LocalStore;
use sea_gcp::storage::Store;
use sea_gcp::upload::{TicketSigner, UploadField, UploadFields, UploadRouter};
use sea_gcp::{Secret, Settings, StoreConfig};

const HMAC_SECRET: &str = "hmac-SECRET-0123456789abcdef";
const URL_SECRET: &str = "url-SECRET-0123456789abcdef";
const TICKET_SECRET: &str = "ticket-SECRET-0123456789abcdef";

fn assert_hidden(what: &str, debug: String) {
    for secret in [HMAC_SECRET, URL_SECRET, TICKET_SECRET] {
        assert!(!debug.contains(secret), "{what} prints a secret: {debug}");
    }
    assert!(!debug.contains("SECRET-"), "{what} prints part of a secret: {debug}");
}

fn hmac() -> SigningConfig {
    SigningConfig::Hmac { access_id: "GOOG1ACCESS".into(), secret: Secret::new(HMAC_SECRET) }
}

#[tokio::test]
async fn debug_output_carries_no_secret() {
    let signing = hmac();
    assert_hidden("SigningConfig", format!("{signing:?} {signing:#?}"));
    assert!(format!("{signing:?}").contains("GOOG1ACCESS"), "the access id is not secret and stays visible");

    let dir = tempfile::tempdir().unwrap();
    let mut local_config = StoreConfig::local(dir.path());
    local_config.signing = hmac();
    assert_hidden("StoreConfig", format!("{local_config:?} {local_config:#?}"));

    let gcs_config =
        StoreConfig { api_endpoint: Some("http://127.0.0.1:9".into()), signing: hmac(), ..StoreConfig::gcs("bucket") };
    let settings =
        Settings::builder().store("media", local_config.clone()).store("gcs", gcs_config.clone()).build().unwrap();
    assert_hidden("Settings", format!("{settings:?} {settings:#?}"));

    let local = Arc::new(LocalStore::new("media", local_config).await.unwrap().with_url_secret(URL_SECRET));
    assert_hidden("LocalStore", format!("{local:?} {local:#?}"));

    let gcs = sea_gcp::storage::GcsStore::new("gcs", gcs_config).await.unwrap();
    assert_hidden("GcsStore", format!("{gcs:?} {gcs:#?}"));

    let store: Arc<dyn Store> = local.clone();
    let field = UploadField::new("doc.file", store);
    assert_hidden("UploadField", format!("{field:?} {field:#?}"));
    let fields = UploadFields::new().register(field).unwrap();
    assert_hidden("UploadFields", format!("{fields:?}"));
    let signer = TicketSigner::new(TICKET_SECRET);
    assert_hidden("TicketSigner", format!("{signer:?}"));
    let router = UploadRouter::new(fields, signer).allow_all();
    assert_hidden("UploadRouter", format!("{router:?} {router:#?}"));
    let verifier = router.verifier();
    assert_hidden("UploadVerifier", format!("{verifier:?} {verifier:#?}"));
}

#[test]
fn secrets_from_toml_are_redacted() {
    let config: StoreConfig = toml::from_str(&format!(
        "bucket_name = \"b\"\n[signing]\nkind = \"hmac\"\naccess_id = \"GOOG1ACCESS\"\nsecret = \"{HMAC_SECRET}\"\n"
    ))
    .unwrap();
    match &config.signing {
        SigningConfig::Hmac { secret, .. } => assert_eq!(secret.expose(), HMAC_SECRET),
        other => panic!("expected HMAC signing, got {other:?}"),
    }
    assert_hidden("StoreConfig from TOML", format!("{config:?}"));
}
