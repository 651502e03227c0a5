//! Shared by the logging tests: a captured writer and golden-line normalisation.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use sea_gcp::logging::{CloudLoggingLayer, LoggingOptions};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

/// Lines written by the layer, in memory.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

/// One line's writer: appends to the shared buffer.
pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> CapturedWriter {
        CapturedWriter(Arc::clone(&self.0))
    }
}

impl Captured {
    /// Every line, parsed (each must be one JSON object).
    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).expect("lines are UTF-8");
        assert!(text.is_empty() || text.ends_with('\n'), "every line ends with a newline");
        text.lines()
            .map(|l| parse_strict(l).unwrap_or_else(|e| panic!("not JSON without duplicate keys ({e}): {l}")))
            .collect()
    }

    /// Every line as written (each must still parse without duplicate keys).
    pub fn raw_lines(&self) -> Vec<String> {
        let lines: Vec<String> =
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_string).collect();
        for l in &lines {
            parse_strict(l).unwrap_or_else(|e| panic!("not JSON without duplicate keys ({e}): {l}"));
        }
        lines
    }

    /// A subscriber writing here with `options`.
    pub fn subscriber(&self, options: LoggingOptions) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::registry().with(CloudLoggingLayer::new(options).with_writer(self.clone()))
    }
}

/// Parse one JSON text, refusing any object that holds a key twice (serde_json would keep the last value
/// silently, which is what a log parser does too, so a forged duplicate would go unseen).
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A seed building a [`Value`] like serde_json does, but failing on a duplicate key at any depth.
struct Strict;

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Options with a fixed service context.
pub fn options() -> LoggingOptions {
    LoggingOptions::default().with_service_context("orders", Some("orders-00042".into()))
}

/// Check the values that vary from run to run and replace them with placeholders: `time` (RFC 3339, UTC,
/// nine fractional digits) is removed, source-location line numbers become `"<line>"` (a number in a
/// string) or `"<lineNumber>"`, and `httpRequest.latency` becomes `"<latency>"` (a `"N.NNNs"` duration).
pub fn normalize(mut line: Value) -> Value {
    let time = line.as_object_mut().unwrap().remove("time").expect("every line has a time");
    let time = time.as_str().expect("time is a string");
    chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("time {time} is not RFC 3339: {e}"));
    let fraction = time.split('.').nth(1).expect("fractional seconds");
    assert_eq!(fraction.len(), 10, "nanoseconds and Z in {time}");
    assert!(time.ends_with('Z'));
    let age = chrono::Utc::now() - chrono::DateTime::parse_from_rfc3339(time).unwrap().to_utc();
    assert!(age.num_seconds().abs() < 60, "time {time} is now");
    if let Some(loc) = line.get_mut("logging.googleapis.com/sourceLocation") {
        let n = loc["line"].as_str().expect("line is a string").parse::<u32>().expect("line is a number");
        assert!(n > 0);
        loc["line"] = "<line>".into();
    }
    if let Some(loc) = line.pointer_mut("/context/reportLocation") {
        assert!(loc["lineNumber"].as_u64().expect("lineNumber is a number") > 0);
        loc["lineNumber"] = "<lineNumber>".into();
    }
    if let Some(latency) = line.pointer_mut("/httpRequest/latency") {
        let s = latency.as_str().expect("latency is a string");
        let secs = s.strip_suffix('s').expect("latency ends with s");
        assert!(secs.parse::<f64>().unwrap() < 10.0, "{s}");
        *latency = "<latency>".into();
    }
    line
}

/// Assert `actual` equals `expected`, printing both on failure.
pub fn assert_json(actual: &Value, expected: &Value) {
    assert!(
        actual == expected,
        "line differs\n actual:   {}\n expected: {}",
        serde_json::to_string_pretty(actual).unwrap(),
        serde_json::to_string_pretty(expected).unwrap()
    );
}
