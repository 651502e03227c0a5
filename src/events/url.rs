//! [`event_url`]: the URL a push subscription posts to.

use std::collections::BTreeMap;

use crate::encoding;

/// The endpoint URL for `kind` and `reference`: `{base}{path}/{kind}/{reference}?{params}`, absolute when
/// `base` is given (the router's external base URL), else relative. Segments are percent-encoded; the
/// parameters are form-encoded and decode back to the same map (`parse_parameters`).
pub fn event_url(
    base: Option<&str>,
    path: &str,
    kind: &str,
    reference: &str,
    parameters: &BTreeMap<String, String>,
) -> String {
    let base = base.unwrap_or("").trim_end_matches('/');
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() || path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let mut url = format!("{base}{path}/{}/{}", encoding::component_iter(kind), encoding::component_iter(reference));
    if !parameters.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(parameters.iter()).finish();
        url.push('?');
        url.push_str(&query);
    }
    url
}

/// Decode a query string into the map [`event_url`] encoded (a repeated key keeps its last value).
pub(crate) fn parse_parameters(query: Option<&str>) -> BTreeMap<String, String> {
    query.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_parameters_and_encodes_segments() {
        let params: BTreeMap<String, String> = [("a b", "c&d=e"), ("unicode", "é/ü"), ("empty", "")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let url = event_url(Some("https://app.example.com/"), "/events", "orders", "o/1 x", &params);
        assert!(url.starts_with("https://app.example.com/events/orders/o%2F1%20x?"), "{url}");
        let query = url.split_once('?').unwrap().1;
        assert_eq!(parse_parameters(Some(query)), params);
        assert_eq!(event_url(None, "events", "k", "r", &BTreeMap::new()), "/events/k/r");
    }
}
