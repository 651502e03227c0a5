//! `sea-gcp sign-url gs://BUCKET/OBJECT`: print a V4 signed URL.

use std::io::Write;

use clap::{Args, ValueEnum};

use crate::args::{SignerArgs, TargetArgs, pairs_to_map, parse_gs_url, parse_key_value};
use sea_gcp::Result;
use sea_gcp::http::Method;
use sea_gcp::signing::{V4Request, sign_url};

/// Output format of `sign-url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// The URL alone.
    #[default]
    Url,
    /// `{"url", "canonical_request", "string_to_sign"}` as JSON.
    Json,
}

/// Flags of `sea-gcp sign-url`.
#[derive(Debug, Clone, Args)]
pub struct SignUrlArgs {
    /// The object, as gs://BUCKET/OBJECT (gs://BUCKET for a bucket-level URL).
    #[arg(value_name = "URL")]
    pub url: String,

    /// HTTP method the URL allows: GET, HEAD, PUT, POST or DELETE.
    #[arg(short = 'm', long, value_name = "VERB", default_value = "GET", value_parser = parse_method)]
    pub http_verb: Method,

    /// A header the client must send, KEY=VALUE (repeat the flag for more).
    #[arg(long = "headers", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,

    /// A query parameter to sign, KEY=VALUE (repeat for more; `\=` for an `=` inside the key).
    #[arg(long = "query-params", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub query_params: Vec<(String, String)>,

    /// Output: the URL, or JSON with the canonical request and string to sign.
    #[arg(long, value_enum, default_value_t = OutputFormat::Url)]
    pub format: OutputFormat,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub signer: SignerArgs,
}

fn parse_method(text: &str) -> std::result::Result<Method, String> {
    match text.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "HEAD" => Ok(Method::HEAD),
        "PUT" => Ok(Method::PUT),
        "POST" => Ok(Method::POST),
        "DELETE" => Ok(Method::DELETE),
        other => Err(format!("unknown HTTP method `{other}`: use GET, HEAD, PUT, POST or DELETE")),
    }
}

impl SignUrlArgs {
    /// The library request these flags describe.
    pub fn request(&self) -> Result<V4Request> {
        let (bucket, object) = parse_gs_url(&self.url)?;
        let t = &self.target;
        Ok(V4Request {
            bucket,
            object: (!object.is_empty()).then_some(object),
            method: self.http_verb.clone(),
            expiration: t.duration,
            timestamp: t.at,
            headers: pairs_to_map(&self.headers, "header", true)?,
            query_params: pairs_to_map(&self.query_params, "query parameter", false)?,
            endpoint: t.endpoint(),
        })
    }

    /// Sign and print.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        let request = self.request()?;
        let signed = self.signer.sign_with(|signer| async move { sign_url(&*signer, &request).await }).await?;
        match self.format {
            OutputFormat::Url => writeln!(out, "{}", signed.url)?,
            OutputFormat::Json => {
                let json = serde_json::json!({
                    "url": signed.url,
                    "canonical_request": signed.canonical_request,
                    "string_to_sign": signed.string_to_sign,
                });
                writeln!(out, "{json}")?
            }
        }
        Ok(())
    }
}
