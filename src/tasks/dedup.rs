//! Task ids of deduplicated tasks: a hash of the payload's canonical JSON.
//!
//! `id = sha256(canonical JSON)[..8 hex] + delimiter + slug [+ delimiter + affix]`. Canonical JSON has its
//! object keys sorted at every level (serde_json's default map is ordered), so `{"a":1,"b":2}` and
//! `{"b":2,"a":1}` give one id; django-gcp hashes `json.dumps` output, whose key order follows the dict.
//!
//! With `django_gcp_compat` ([`TasksSettings::django_gcp_compat`](super::TasksSettings)) the hash is of
//! [`django_gcp_json`] instead, so that an id matches the one django-gcp gives the same payload.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The longest Cloud Tasks task id.
pub(crate) const MAX_TASK_ID_LEN: usize = 500;

/// The canonical JSON text of `payload`: compact, object keys sorted.
pub fn canonical_json<P: Serialize + ?Sized>(payload: &P) -> Result<String> {
    // Through `Value` (a BTreeMap without serde_json's `preserve_order`): keys come out sorted.
    let value = serde_json::to_value(payload)
        .map_err(|e| Error::InvalidArgument(format!("task payload does not serialize to JSON: {e}")))?;
    Ok(value.to_string())
}

/// The JSON text Python's `json.dumps(payload)` writes, which django-gcp hashes: `", "` and `": "`
/// separators, object keys in the order the payload serializes them (a struct's field order; a
/// `serde_json::Value` or `BTreeMap` sorts them, a `HashMap` has no stable order), every character
/// outside printable ASCII escaped as `\uXXXX` (UTF-16, lowercase hex), floats as Python's `repr`
/// (`1e+16`, `1.5e-05`, `100.0`).
pub fn django_gcp_json<P: Serialize + ?Sized>(payload: &P) -> Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    payload
        .serialize(&mut ser)
        .map_err(|e| Error::InvalidArgument(format!("task payload does not serialize to JSON: {e}")))?;
    Ok(String::from_utf8(out).expect("the formatter writes ASCII"))
}

/// `json.dumps` defaults: `ensure_ascii=True`, `separators=(", ", ": ")`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
        // serde_json escapes `"`, `\` and control characters itself; the rest of non-printable ASCII
        // (DEL) and everything above it is escaped here, as Python does.
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, value: f64) -> std::io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + std::io::Write>(&mut self, w: &mut W, value: f32) -> std::io::Result<()> {
        // Python has only doubles: an f32 is written as the double it widens to.
        self.write_f64(w, f64::from(value))
    }
}

/// Python's `repr(float)` of a finite value: the shortest round-trip digits, positional when the
/// decimal exponent is in -4..16 (with `.0` for whole numbers), else `d.ddde±XX`.
fn python_float_repr(value: f64) -> String {
    if !value.is_finite() {
        // serde_json refuses these before the formatter sees them; Python would write NaN/Infinity.
        return "null".into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`.
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

/// The task id of a deduplicated task with `payload`, for the task `slug`: the hash of
/// [`canonical_json`].
pub fn task_id<P: Serialize + ?Sized>(payload: &P, slug: &str, delimiter: &str, affix: Option<&str>) -> Result<String> {
    id_of(&canonical_json(payload)?, slug, delimiter, affix)
}

/// The task id django-gcp gives a deduplicated task with `payload` (its slug `slug`): the same shape as
/// [`task_id`], the hash of [`django_gcp_json`].
pub(crate) fn django_gcp_task_id<P: Serialize + ?Sized>(
    payload: &P,
    slug: &str,
    delimiter: &str,
    affix: Option<&str>,
) -> Result<String> {
    id_of(&django_gcp_json(payload)?, slug, delimiter, affix)
}

fn id_of(hashed: &str, slug: &str, delimiter: &str, affix: Option<&str>) -> Result<String> {
    let digest = hex::encode(Sha256::digest(hashed.as_bytes()));
    let mut id = format!("{}{delimiter}{slug}", &digest[..8]);
    if let Some(affix) = affix {
        id.push_str(delimiter);
        id.push_str(affix);
    }
    check_task_id(&id)?;
    Ok(id)
}

/// Cloud Tasks' task id rule: `[A-Za-z0-9_-]{1,500}`.
pub(crate) fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TASK_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_task_id(id: &str) -> Result<()> {
    if valid_task_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "task id {id:?} is not valid for Cloud Tasks ([A-Za-z0-9_-], 1 to 500 characters): use a delimiter \
             and affix of letters, digits, `-` and `_`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a = task_id(&json!({"user": 1, "kind": {"z": 1, "a": [3, 2]}}), "mail", "--", None).unwrap();
        let b = task_id(&json!({"kind": {"a": [3, 2], "z": 1}, "user": 1}), "mail", "--", None).unwrap();
        assert_eq!(a, b);
        let c = task_id(&json!({"user": 2, "kind": {"z": 1, "a": [3, 2]}}), "mail", "--", None).unwrap();
        assert_ne!(a, c);
        // Array order is data: it changes the id.
        let d = task_id(&json!({"user": 1, "kind": {"z": 1, "a": [2, 3]}}), "mail", "--", None).unwrap();
        assert_ne!(a, d);
    }

    #[test]
    fn shape_hash_slug_affix() {
        let id = task_id(&json!({"a": 1}), "mail", "--", Some("shop-prod")).unwrap();
        let digest = hex::encode(Sha256::digest(br#"{"a":1}"#));
        assert_eq!(id, format!("{}--mail--shop-prod", &digest[..8]));
        assert_eq!(task_id(&json!({"a": 1}), "mail", "__", None).unwrap(), format!("{}__mail", &digest[..8]));
        assert!(task_id(&json!({"a": 1}), "mail", "//", None).is_err());
        assert!(valid_task_id(&"a".repeat(500)) && !valid_task_id(&"a".repeat(501)) && !valid_task_id(""));
    }

    // The expected texts and hashes are what CPython 3's `json.dumps` and `hashlib.sha256` give for the
    // same dicts, keys in the same order.
    #[derive(serde::Serialize)]
    struct Kind {
        z: i32,
        a: Vec<i32>,
    }
    #[derive(serde::Serialize)]
    struct Order {
        user: i32,
        kind: Kind,
    }
    #[derive(serde::Serialize)]
    struct Texts {
        text: &'static str,
        n: i64,
        ok: bool,
        none: Option<()>,
        ctl: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Floats {
        f: Vec<f64>,
    }

    #[test]
    fn django_gcp_ids_match_python_json_dumps() {
        let order = Order { user: 1, kind: Kind { z: 1, a: vec![3, 2] } };
        assert_eq!(django_gcp_json(&order).unwrap(), r#"{"user": 1, "kind": {"z": 1, "a": [3, 2]}}"#);
        assert_eq!(django_gcp_task_id(&order, "mail", "--", None).unwrap(), "0a500bdf--mail");
        assert_eq!(django_gcp_task_id(&order, "mail", "--", Some("prod")).unwrap(), "0a500bdf--mail--prod");
        assert_ne!(task_id(&order, "mail", "--", None).unwrap(), "0a500bdf--mail", "the default differs");

        let texts = Texts { text: "café ☕ 😀", n: -7, ok: true, none: None, ctl: "a\"b\\c\n\t\x7f\x01" };
        assert_eq!(
            django_gcp_json(&texts).unwrap(),
            r#"{"text": "caf\u00e9 \u2615 \ud83d\ude00", "n": -7, "ok": true, "none": null, "ctl": "a\"b\\c\n\t\u007f\u0001"}"#
        );
        assert_eq!(django_gcp_task_id(&texts, "t", "--", None).unwrap(), "bda5716a--t");

        let floats = Floats {
            f: vec![1.0, 0.1, 1e16, 1e15, 1.5e-5, 0.0001, -2.5e-7, 123456789012345680.0, 12.375, 0.0, -0.0, 1e300],
        };
        assert_eq!(
            django_gcp_json(&floats).unwrap(),
            r#"{"f": [1.0, 0.1, 1e+16, 1000000000000000.0, 1.5e-05, 0.0001, -2.5e-07, 1.2345678901234568e+17, 12.375, 0.0, -0.0, 1e+300]}"#
        );
        assert_eq!(django_gcp_task_id(&floats, "t", "--", None).unwrap(), "525608dc--t");
    }
}
