//! Object-name and label validation the apiserver applies to every object: names are RFC 1123
//! subdomains (namespaces: RFC 1123 labels), label keys are optional DNS-prefix + name
//! segment, label values are at most 63 characters of `[A-Za-z0-9_.-]`.

use serde_json::Value;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_qualified_segment(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Checks `metadata.name` (as a label for namespaces) and the labels; returns
/// `(field, message)` of the first problem.
pub fn check(obj: &Value, name_is_label: bool) -> Result<(), (String, String)> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (ok, msg) = if name_is_label {
        (is_dns_label(name), LABEL_MSG)
    } else {
        (is_dns_subdomain(name), SUBDOMAIN_MSG)
    };
    if !ok {
        return Err((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": {msg}"),
        ));
    }
    let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
    for (key, value) in labels.into_iter().flatten() {
        let field = "metadata.labels".to_string();
        let (prefix, segment) = match key.split_once('/') {
            Some((p, s)) => (Some(p), s),
            None => (None, key.as_str()),
        };
        if prefix.is_some_and(|p| !is_dns_subdomain(p)) || !is_qualified_segment(segment) {
            return Err((field, format!("Invalid value: \"{key}\": {QUALIFIED_MSG}")));
        }
        let Some(text) = value.as_str() else {
            return Err((
                field,
                format!("Invalid value: {value}: label values must be strings"),
            ));
        };
        if !text.is_empty() && !is_qualified_segment(text) {
            return Err((field, format!("Invalid value: \"{text}\": {VALUE_MSG}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, labels: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}})
    }

    #[test]
    fn names_and_labels() {
        assert!(
            check(
                &obj("acme-primary", json!({"app.kubernetes.io/name": "x_1"})),
                false
            )
            .is_ok()
        );
        assert!(check(&obj("w1.abc", json!({})), false).is_ok());
        assert!(check(&obj("w1.abc", json!({})), true).is_err());
        assert!(check(&obj("Acme", json!({})), false).is_err());
        assert!(check(&obj("-a", json!({})), false).is_err());
        assert!(check(&obj("a", json!({"bad key": "v"})), false).is_err());
        assert!(check(&obj("a", json!({"k": "-v"})), false).is_err());
        assert!(check(&obj("a", json!({"k": ""})), false).is_ok());
        assert!(check(&obj("a", json!({"k": 1})), false).is_err());
    }
}
