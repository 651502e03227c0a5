//! What an end user may read: plain sentences, never API names, code identifiers or internal paths.
//!
//! Every refusal a browser can show ([`Refusal::message`](super::Refusal::message), a
//! [`TicketRejection`](super::TicketRejection)'s `message`) is written for the person at the form; the
//! developer detail goes to the log. [`looks_like_code`] is the check, used by the refusal of a failed
//! save to fall back to a plain sentence when a field's message names code, and by the tests that walk
//! every user-facing message.

/// True when `text` contains something an end user should not read: a path separator of code
/// (`::`), a backtick, a call (`name(`…`)`), a CamelCase identifier (`BlobChanges`), a snake_case
/// identifier (`allow_blank`, `x-goog-…` headers), or an ingress path (`_tmp/`).
pub fn looks_like_code(text: &str) -> bool {
    if text.contains("::") || text.contains('`') || text.contains("_tmp/") {
        return true;
    }
    let words = text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'));
    for word in words.filter(|w| !w.is_empty()) {
        let word = word.trim_matches('.');
        let ident = word.trim_matches(|c: char| !c.is_alphanumeric());
        // snake_case (`allow_blank`) or a header name (`x-goog-content-length-range`).
        if ident.contains('_') || ident.starts_with("x-") {
            return true;
        }
        // CamelCase with an inner capital after a lower-case letter (`BlobChanges`, `withDetail`);
        // size units (`MiB`) are words users read.
        let chars: Vec<char> = ident.chars().collect();
        let unit = matches!(ident, "KiB" | "MiB" | "GiB" | "TiB");
        if !unit && chars.windows(2).any(|w| w[0].is_lowercase() && w[1].is_uppercase()) {
            return true;
        }
        // Letters, digits, letters: an encoding or algorithm name (`base64url`, `sha256sum`).
        let after_letters = ident.trim_start_matches(|c: char| c.is_alphabetic());
        let after_digits = after_letters.trim_start_matches(|c: char| c.is_ascii_digit());
        if after_letters.len() < ident.len()
            && after_digits.len() < after_letters.len()
            && after_digits.starts_with(|c: char| c.is_alphabetic())
        {
            return true;
        }
    }
    // A call: an identifier directly followed by `(` (`attach()`, `check_upload(x)`).
    let bytes: Vec<char> = text.chars().collect();
    bytes.windows(2).any(|w| (w[0].is_alphanumeric() || w[0] == '_') && w[1] == '(')
}

/// `12.0 MiB`, `3.5 KiB`, `17 B`: a size as users read it.
pub(crate) fn size_text(n: u64) -> String {
    match n {
        n if n >= 1024 * 1024 => format!("{:.1} MiB", n as f64 / 1048576.0),
        n if n >= 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn developer_text_is_recognised() {
        for code in [
            "attach an upload (BlobChanges::attach), or allow blank on the field",
            "no file was uploaded for `documents.file` with this ticket; upload it again",
            "the value is not an upload ticket (the signature is not base64url)",
            "use check_upload first",
            "call attach(upload)",
            "set allow_blank",
            "exceeds x-goog-content-length-range 0,10",
            "the upload _tmp/0190/a.txt is missing",
            "set it with withDetail",
        ] {
            assert!(looks_like_code(code), "not recognised as code: {code}");
        }
        for plain in [
            "The file is 12.0 MiB; the largest file accepted here is 10.0 MiB.",
            "Files of this type are not accepted here. Accepted: image/*, application/pdf.",
            "This file was already saved.",
            "Could not reach the server (503). Try again in a moment.",
            "Your session has expired: reload the page and try again.",
        ] {
            assert!(!looks_like_code(plain), "plain text taken for code: {plain}");
        }
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(17), "17 B");
        assert_eq!(size_text(3584), "3.5 KiB");
        assert_eq!(size_text(10 << 20), "10.0 MiB");
    }

    /// Every message an end user can read from the upload routes, the ticket checks, a failed save and
    /// the widget, walked one by one: none may name code.
    #[tokio::test]
    async fn every_user_facing_message_is_plain() {
        use std::sync::Arc;

        use axum::http::Request;

        use crate::field::validate::{FieldState, check};
        use crate::field::{BlobChange, BlobValue, PendingUpload};
        use crate::storage::memory::MemoryStore;
        use crate::storage::{PutOptions, PutPayload, Store};
        use crate::upload::{
            AllowAll, Refusal, TicketClaims, TicketProblem, TicketSigner, UploadField, UploadFields, UploadRouter,
            UploadVerifier,
        };

        let mut seen: Vec<(String, String)> = Vec::new();
        let mut note = |what: &str, message: &str| seen.push((what.to_string(), message.to_string()));

        for problem in [
            TicketProblem::Malformed,
            TicketProblem::BadSignature,
            TicketProblem::Expired,
            TicketProblem::WrongField,
            TicketProblem::WrongSubject,
            TicketProblem::Replayed,
            TicketProblem::BadUpload,
        ] {
            note(problem.code(), problem.user_message());
        }

        // The ticket route.
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new("media", crate::StoreConfig::memory()).unwrap());
        let field = UploadField::new("documents.file", store.clone()).max_size(100).accept(["text/plain"]);
        let fields = UploadFields::new().register(field).unwrap();
        let signer = TicketSigner::new("secret");
        let json = || Request::post("/uploads").header("content-type", "application/json").body(()).unwrap();
        let unhooked = UploadRouter::new(fields.clone(), signer.clone());
        let router = unhooked.clone().authorize(AllowAll);
        let requests: Vec<(_, &str)> = vec![
            (Request::post("/uploads").body(()).unwrap(), r#"{"field":"documents.file"}"#),
            (json(), "not json"),
            (json(), r#"{"field":"documents.file","filename":"a","size":1,"path":"x"}"#),
            (json(), r#"{"field":"documents.file","size":1}"#),
            (json(), r#"{"field":"documents.nope","filename":"a.txt","size":1}"#),
            (json(), r#"{"field":"documents.file","filename":"a.txt","size":1000,"content_type":"text/plain"}"#),
            (json(), r#"{"field":"documents.file","filename":"a.exe","size":1,"content_type":"application/x_exe"}"#),
            (json(), r#"{"field":"documents.file","filename":"a.txt","size":1,"content_type":"text/plain\r\nx: y"}"#),
            // The memory store issues no signed uploads: the storage refusal.
            (json(), r#"{"field":"documents.file","filename":"a.txt","size":1,"content_type":"text/plain"}"#),
        ];
        for (request, body) in requests {
            let parts = request.into_parts().0;
            let refusal = router.issue(&parts, body.as_bytes()).await.unwrap_err();
            note(&refusal.error, &refusal.message);
        }
        let refusal = unhooked.issue(&json().into_parts().0, b"{}").await.unwrap_err();
        note(&refusal.error, &refusal.message);

        // Posted tickets.
        let verifier = UploadVerifier::new(signer.clone(), Arc::new(fields));
        let claims = |name: &str, expires: i64| TicketClaims {
            v: crate::upload::TICKET_VERSION,
            store: "media".into(),
            field: "documents.file".into(),
            name: name.into(),
            original_name: "a.txt".into(),
            max_size: 100,
            size: 4,
            content_type: "text/plain".into(),
            expires,
            nonce: uuid::Uuid::new_v4().to_string(),
            sub: None,
        };
        let far = chrono::Utc::now().timestamp() + 3600;
        let missing = signer.issue(&claims("_tmp/missing/a.txt", far));
        let big_name = "_tmp/big/a.txt";
        store.put(big_name, PutPayload::Bytes(vec![0; 50].into()), PutOptions::default()).await.unwrap();
        let big = signer.issue(&claims(big_name, far));
        let typed_name = "_tmp/typed/a.txt";
        let typed_opts = PutOptions::default().with_content_type("image/png");
        store.put(typed_name, PutPayload::Bytes(vec![0; 4].into()), typed_opts).await.unwrap();
        let typed = signer.issue(&claims(typed_name, far));
        let expired = signer.issue(&claims("_tmp/x/a.txt", 1));
        let forged = TicketSigner::new("other").issue(&claims("_tmp/x/a.txt", far));
        let bound = signer.issue(&TicketClaims { sub: Some("bob".into()), ..claims("_tmp/x/a.txt", far) });
        for (field, ticket) in [
            ("documents.file", "_tmp/raw/path.txt".to_string()),
            ("documents.file", "a.!!!".to_string()),
            ("documents.file", forged),
            ("documents.file", expired),
            ("documents.other", missing.clone()),
            ("documents.file", bound),
            ("documents.file", missing),
            ("documents.file", big),
            ("documents.file", typed),
        ] {
            let rejection = verifier.verify(field, &ticket).await.unwrap_err();
            let refusal = Refusal::from(rejection);
            note(&refusal.error, &refusal.message);
        }

        // Failed saves, with the library's own developer messages.
        let value = BlobValue::uncached("a");
        let attach = BlobChange::Attach(PendingUpload::trusted("_tmp/x/a", None, "a"));
        let state = |adding, blankable, editable, existing| FieldState {
            field: "documents.file",
            adding,
            blankable,
            editable,
            existing,
        };
        let mut errors = vec![
            check(state(true, false, true, None), None).unwrap_err(),
            check(state(false, false, true, Some(&value)), Some(&BlobChange::Blank)).unwrap_err(),
            check(state(false, true, false, Some(&value)), Some(&attach)).unwrap_err(),
            crate::Error::TicketReplayed { field: "documents.file".into() },
            crate::Error::NotFound { store: "media".into(), name: "_tmp/x/a".into() },
            crate::Error::Precondition { store: "media".into(), name: "docs/1".into(), message: "412".into() },
            crate::Error::Database(sea_orm::DbErr::Custom("relation `documents` does not exist".into())),
        ];
        errors.push(crate::Error::Validation {
            field: "documents.file".into(),
            message: "a blob column cannot be set directly on the ActiveModel: use BlobChanges::attach".into(),
        });
        for error in &errors {
            let refusal = Refusal::from_save_error(error);
            note(&refusal.error, &refusal.message);
        }

        // The widget's own sentences (double-quoted literals that start with a capital letter).
        let js = crate::upload::router::WIDGET_JS;
        for literal in js.split('"').skip(1).step_by(2) {
            if literal.starts_with(|c: char| c.is_ascii_uppercase()) && literal.contains(' ') {
                note("widget", literal);
            }
        }

        assert!(seen.len() > 30, "{seen:#?}");
        let coded: Vec<_> = seen.iter().filter(|(_, m)| m.is_empty() || looks_like_code(m)).collect();
        assert!(coded.is_empty(), "user-facing messages that name code: {coded:#?}");
    }
}
