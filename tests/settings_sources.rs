//! One settings source for every subsystem: the file, django-gcp's variable names and `SEA_GCP__*`, with
//! one precedence rule, unknown keys refused with the nearest valid name, and secrets never printed.

use std::time::Duration;

use sea_gcp::Settings;
use sea_gcp::config::Origin;

/// A process environment as `(name, value)` pairs.
type Env = Vec<(String, String)>;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const FILE: &str = r#"
project_id = "file-project"
base_url = "https://shop.example.com"

[stores.media]
bucket_name = "shop-media"

[uploads]
secret = "0123456789abcdef0123456789abcdef-file"
ticket_lifetime = "15m"

[events]
invoker_emails = ["push@file.iam.gserviceaccount.com"]

[tasks]
queue = "file-queue"
region = "us-central1"
affix = "shop"

[logging]
service = "shop-file"
trusted_proxies = ["10.0.0.0/8"]
"#;

#[test]
fn every_section_reads_from_the_file() {
    let s = Settings::from_toml_and_env(FILE, env(&[])).unwrap();
    assert_eq!(s.project_id.as_deref(), Some("file-project"));
    assert_eq!(s.base_url.as_deref(), Some("https://shop.example.com"));
    assert_eq!(s.prefix, "/gcp");
    assert_eq!(s.store_config("media").unwrap().bucket_name, "shop-media");
    assert_eq!(s.uploads.ticket_lifetime, Some(Duration::from_secs(900)));
    assert_eq!(s.events.invoker_emails, ["push@file.iam.gserviceaccount.com"]);
    assert!(s.events.authenticate, "authentication is on unless turned off");
    assert_eq!((s.tasks.queue.as_str(), s.tasks.region.as_str()), ("file-queue", "us-central1"));
    assert_eq!(s.tasks.affix.as_deref(), Some("shop"));
    assert_eq!(s.logging.service.as_deref(), Some("shop-file"));
    assert_eq!(s.logging.trusted_proxies, ["10.0.0.0/8"]);
    assert_eq!(s.origin("tasks.queue"), Some(&Origin::File("(text)".into())));
}

#[test]
fn precedence_is_file_then_django_gcp_names_then_sea_gcp_names() {
    // The django-gcp name beats the file...
    let s = Settings::from_toml_and_env(FILE, env(&[("GCP_TASKS_DEFAULT_QUEUE_NAME", "django-queue")])).unwrap();
    assert_eq!(s.tasks.queue, "django-queue");
    assert_eq!(s.origin("tasks.queue"), Some(&Origin::Env("GCP_TASKS_DEFAULT_QUEUE_NAME".into())));
    // ...and SEA_GCP__ beats both, whatever the order the variables come in.
    let vars = env(&[("SEA_GCP__TASKS__QUEUE", "sea-queue"), ("GCP_TASKS_DEFAULT_QUEUE_NAME", "django-queue")]);
    let s = Settings::from_toml_and_env(FILE, vars).unwrap();
    assert_eq!(s.tasks.queue, "sea-queue");
    assert_eq!(s.origin("tasks.queue"), Some(&Origin::Env("SEA_GCP__TASKS__QUEUE".into())));
    // GCP_PROJECT_ID beats GOOGLE_CLOUD_PROJECT; both beat the file.
    let vars = env(&[("GOOGLE_CLOUD_PROJECT", "gc-project"), ("GCP_PROJECT_ID", "gcp-project")]);
    assert_eq!(Settings::from_toml_and_env(FILE, vars).unwrap().project_id.as_deref(), Some("gcp-project"));
    let vars = env(&[("GOOGLE_CLOUD_PROJECT", "gc-project")]);
    assert_eq!(Settings::from_toml_and_env(FILE, vars).unwrap().project_id.as_deref(), Some("gc-project"));
    // A list set by a variable replaces the file's list.
    let vars =
        env(&[("GCP_INVOKER_SERVICE_ACCOUNT_EMAILS", "a@x.iam.gserviceaccount.com, b@x.iam.gserviceaccount.com")]);
    let s = Settings::from_toml_and_env(FILE, vars).unwrap();
    assert_eq!(s.events.invoker_emails, ["a@x.iam.gserviceaccount.com", "b@x.iam.gserviceaccount.com"]);
}

/// Every django-gcp variable, and where it lands.
#[test]
fn a_django_gcp_environment_works_unchanged() {
    let vars = env(&[
        ("GCP_PROJECT_ID", "shop-prod"),
        ("BASE_URL", "https://shop.example.com/"),
        ("GCP_INVOKER_SERVICE_ACCOUNT_EMAILS", "push@shop-prod.iam.gserviceaccount.com"),
        ("GCP_TASKS_DEFAULT_QUEUE_NAME", "primary"),
        ("GCP_TASKS_DOMAIN", "https://worker.example.com"),
        ("GCP_TASKS_REGION", "europe-west2"),
        ("GCP_TASKS_RESOURCE_AFFIX", "shop-prod"),
        ("GCP_TASKS_DELIMITER", "__"),
        ("GCP_TASKS_EAGER_EXECUTE", "False"),
        ("GCP_TASKS_DISABLE_EXECUTE", "0"),
        ("GCP_TASKS_INVOKER_SERVICE_ACCOUNT", "tasks@shop-prod.iam.gserviceaccount.com"),
        ("GCP_TASKS_EMULATOR_TARGET", "http://127.0.0.1:8123"),
        ("GCP_SCHEDULER_EMULATOR_TARGET", "http://127.0.0.1:8124"),
        ("GCP_TASKS_DJANGO_GCP_COMPAT", "yes"),
        ("GCP_ERROR_REPORTING_SERVICE_NAME", "shop"),
        ("PATH", "/usr/bin"),
        ("HOME", "/root"),
    ]);
    let s = Settings::from_env_vars(vars).unwrap();
    assert_eq!(s.project_id.as_deref(), Some("shop-prod"));
    assert_eq!(s.base_url.as_deref(), Some("https://shop.example.com"), "the trailing slash is dropped");
    assert_eq!(s.events.invoker_emails, ["push@shop-prod.iam.gserviceaccount.com"]);
    let t = &s.tasks;
    assert_eq!(t.queue, "primary");
    assert_eq!(t.domain.as_deref(), Some("https://worker.example.com"));
    assert_eq!(t.region, "europe-west2");
    assert_eq!(t.affix.as_deref(), Some("shop-prod"));
    assert_eq!(t.delimiter, "__");
    assert!(!t.eager && !t.disabled && t.django_gcp_compat);
    assert_eq!(t.invoker_account.as_deref(), Some("tasks@shop-prod.iam.gserviceaccount.com"));
    assert_eq!(t.cloud_tasks_emulator.as_deref(), Some("http://127.0.0.1:8123"));
    assert_eq!(t.scheduler_emulator.as_deref(), Some("http://127.0.0.1:8124"));
    assert_eq!(s.logging.service.as_deref(), Some("shop"));
    // Each one says where it came from.
    for (path, var) in [
        ("project_id", "GCP_PROJECT_ID"),
        ("tasks.delimiter", "GCP_TASKS_DELIMITER"),
        ("tasks.django_gcp_compat", "GCP_TASKS_DJANGO_GCP_COMPAT"),
        ("logging.service", "GCP_ERROR_REPORTING_SERVICE_NAME"),
    ] {
        assert_eq!(s.origin(path), Some(&Origin::Env(var.into())), "{path}");
    }
    let bad = Settings::from_env_vars(env(&[("GCP_TASKS_EAGER_EXECUTE", "sometimes")])).unwrap_err();
    assert!(bad.to_string().contains("GCP_TASKS_EAGER_EXECUTE") && bad.to_string().contains("true or false"), "{bad}");
}

#[test]
fn every_section_key_is_settable_through_sea_gcp_variables() {
    let vars = env(&[
        ("SEA_GCP__PROJECT_ID", "p-1"),
        ("SEA_GCP__BASE_URL", "http://127.0.0.1:8000"),
        ("SEA_GCP__PREFIX", "/internal/"),
        ("SEA_GCP__UPLOADS__SECRET", "0123456789abcdef0123456789abcdef"),
        ("SEA_GCP__UPLOADS__TICKET_LIFETIME", "120"),
        ("SEA_GCP__UPLOADS__ALLOW_ANONYMOUS", "true"),
        ("SEA_GCP__EVENTS__EXTERNAL_URL", "https://push.example.com"),
        ("SEA_GCP__EVENTS__INVOKER_EMAILS", "a@x.iam.gserviceaccount.com"),
        ("SEA_GCP__EVENTS__AUTHENTICATE", "false"),
        ("SEA_GCP__TASKS__QUEUE", "2024"),
        ("SEA_GCP__TASKS__LOCAL", "true"),
        ("SEA_GCP__TASKS__DISPATCH_DEADLINE", "10m"),
        ("SEA_GCP__LOGGING__VERSION", "7"),
        ("SEA_GCP__STORES__MEDIA__BUCKET_NAME", "long-form"),
        ("SEA_GCP__STATIC__BUCKET_NAME", "short-form"),
    ]);
    let s = Settings::from_env_vars(vars).unwrap();
    assert_eq!(s.prefix, "/internal");
    assert_eq!(s.uploads.ticket_lifetime, Some(Duration::from_secs(120)));
    assert!(s.uploads.allow_anonymous && !s.events.authenticate);
    assert_eq!(s.events.external_url.as_deref(), Some("https://push.example.com"));
    assert_eq!(s.events.invoker_emails, ["a@x.iam.gserviceaccount.com"]);
    assert_eq!(s.tasks.queue, "2024", "a text setting that looks like a number stays text");
    assert_eq!(s.tasks.local, Some(true));
    assert_eq!(s.tasks.dispatch_deadline, Some(Duration::from_secs(600)));
    assert_eq!(s.logging.version.as_deref(), Some("7"));
    assert_eq!(s.store_config("media").unwrap().bucket_name, "long-form");
    assert_eq!(s.store_config("static").unwrap().bucket_name, "short-form");
}

#[test]
fn unknown_keys_are_refused_with_the_nearest_valid_name() {
    let cases: [(&str, Env, &str); 5] = [
        ("[tasks]\nquue = \"q\"\n", env(&[]), "did you mean `queue`?"),
        ("projet_id = \"p\"\n", env(&[]), "did you mean `project_id`?"),
        ("[event]\ninvoker_emails = []\n", env(&[]), "did you mean `events`?"),
        ("", env(&[("SEA_GCP__TASKS__REGON", "x")]), "did you mean `region`?"),
        ("", env(&[("SEA_GCP__UPLOADS__SECRETS", "x")]), "did you mean `secret`?"),
    ];
    for (file, vars, hint) in cases {
        let err = Settings::from_toml_and_env(file, vars).unwrap_err().to_string();
        assert!(err.contains(hint), "{file:?}: {err}");
    }
    // A name far from any gets the list instead of a guess.
    let err = Settings::from_toml_and_env("[tasks]\ncolour = 1\n", env(&[])).unwrap_err().to_string();
    assert!(err.contains("valid keys: queue, domain"), "{err}");
}

#[test]
fn secrets_never_appear_in_debug_or_the_description() {
    let vars = env(&[("SEA_GCP__UPLOADS__SECRET", "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t")]);
    let s = Settings::from_toml_and_env(
        "[stores.media]\nbucket_name = \"b\"\n[stores.media.signing]\nkind = \"hmac\"\naccess_id = \"GOOG1\"\nsecret = \"hmac-s3cr3t\"\n",
        vars,
    )
    .unwrap();
    let described = s.describe();
    let debug = format!("{s:?}");
    for text in [&described, &debug] {
        assert!(!text.contains("s3cr3t"), "a secret leaked: {text}");
    }
    assert!(described.contains("uploads.secret = \"***\"  # env SEA_GCP__UPLOADS__SECRET"), "{described}");
    assert!(described.contains("stores.media.bucket_name = \"b\"  # file (text)"), "{described}");
}

#[test]
fn load_reads_the_named_file_or_says_which_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    std::fs::write(&path, "[tasks]\nqueue = \"from-file\"\n").unwrap();
    let s = Settings::load_from(env(&[("SEA_GCP_SETTINGS", path.to_str().unwrap())])).unwrap();
    assert_eq!(s.tasks.queue, "from-file");
    let missing = dir.path().join("nope.toml");
    let err = Settings::load_from(env(&[("SEA_GCP_SETTINGS", missing.to_str().unwrap())])).unwrap_err();
    assert!(err.to_string().contains("nope.toml") && err.to_string().contains("SEA_GCP_SETTINGS"), "{err}");
}

#[test]
fn the_description_lists_every_setting_with_its_origin() {
    let mut s = Settings::from_toml_and_env("[tasks]\nqueue = \"q\"\n", env(&[("GCP_PROJECT_ID", "p-9")])).unwrap();
    s.base_url = Some("http://127.0.0.1:8000".into());
    let text = s.describe();
    for line in [
        "tasks.queue = \"q\"  # file (text)",
        "project_id = \"p-9\"  # env GCP_PROJECT_ID",
        "base_url = \"http://127.0.0.1:8000\"  # code",
        "tasks.region = \"europe-west1\"  # default",
        "prefix = \"/gcp\"  # default",
        "events.authenticate = true  # default",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn the_logging_section_gives_the_layers_their_options() {
    use sea_gcp::logging::TrustedProxies;
    let vars = env(&[("GCP_ERROR_REPORTING_SERVICE_NAME", "shop"), ("SEA_GCP__LOGGING__VERSION", "v7")]);
    let s = Settings::from_toml_and_env("[logging]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n", vars)
        .unwrap();
    let options = s.logging.logging_options();
    assert_eq!((options.service.as_deref(), options.version.as_deref()), (Some("shop"), Some("v7")));
    assert!(matches!(s.logging.trusted_proxies().unwrap(), TrustedProxies::Networks(n) if n.len() == 2));
    let hops = Settings::from_env_vars(env(&[("SEA_GCP__LOGGING__TRUSTED_PROXIES", "1")])).unwrap();
    assert_eq!(hops.logging.trusted_proxies().unwrap(), TrustedProxies::Hops(1));
    let none = Settings::from_env_vars(env(&[])).unwrap();
    assert_eq!(none.logging.trusted_proxies().unwrap(), TrustedProxies::None);
    let bad = Settings::from_toml_and_env("[logging]\ntrusted_proxies = [\"proxy.internal\"]\n", env(&[])).unwrap();
    let err = bad.logging.trusted_proxies().unwrap_err().to_string();
    assert!(err.contains("proxy.internal") && err.contains("not a network"), "{err}");
}
