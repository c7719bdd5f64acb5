//! Decoding of Kubernetes protobuf request bodies for the two built-ins that imperative
//! kubectl commands create (`kubectl create secret ...`, `kubectl create namespace ...`):
//! client-go's typed clients send `application/vnd.kubernetes.protobuf`. Only the fields
//! those commands set are decoded (ObjectMeta name/generateName/namespace/resourceVersion/
//! labels/annotations/finalizers; Secret data/type/stringData/immutable; Namespace
//! finalizers). Responses are always JSON, which those clients accept.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The 4-byte prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("not a Kubernetes protobuf envelope")]
    NoMagic,
    #[error("truncated or malformed protobuf")]
    Malformed,
    #[error("protobuf bodies are only understood for Secrets and Namespaces, not {0}")]
    UnsupportedKind(String),
}

type Result<T> = std::result::Result<T, ProtobufError>;

enum FieldValue<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or(ProtobufError::Malformed)?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtobufError::Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(ProtobufError::Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next (field number, value), or None at the end.
    fn field(&mut self) -> Result<Option<(u64, FieldValue<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => FieldValue::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                FieldValue::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtobufError::Malformed)?;
                FieldValue::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                FieldValue::Fixed
            }
            _ => return Err(ProtobufError::Malformed),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, FieldValue<'_>)>> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.field()? {
        out.push(f);
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtobufError::Malformed)
}

/// A map entry message: key = field 1, value = field 2.
fn map_entry(b: &[u8]) -> Result<(String, Vec<u8>)> {
    let mut key = String::new();
    let mut value = Vec::new();
    for (n, v) in fields(b)? {
        match (n, v) {
            (1, FieldValue::Bytes(k)) => key = string(k)?,
            (2, FieldValue::Bytes(x)) => value = x.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn object_meta(b: &[u8]) -> Result<Value> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for (n, v) in fields(b)? {
        let FieldValue::Bytes(x) = v else { continue };
        // Go's proto2 encoding writes empty optional strings; JSON omits them.
        let field = match n {
            1 => Some("name"),
            2 => Some("generateName"),
            3 => Some("namespace"),
            6 => Some("resourceVersion"),
            _ => None,
        };
        if let Some(field) = field {
            if !x.is_empty() {
                meta.insert(field.into(), json!(string(x)?));
            }
            continue;
        }
        match n {
            11 => {
                let (k, v) = map_entry(x)?;
                labels.insert(k, json!(string(&v)?));
            }
            12 => {
                let (k, v) = map_entry(x)?;
                annotations.insert(k, json!(string(&v)?));
            }
            14 => finalizers.push(json!(string(x)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

fn secret(b: &[u8]) -> Result<Value> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret"});
    let mut data = Map::new();
    let mut string_data = Map::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (n, v) in fields(b)? {
        match (n, v) {
            (1, FieldValue::Bytes(x)) => obj["metadata"] = object_meta(x)?,
            (2, FieldValue::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                data.insert(k, json!(b64.encode(v)));
            }
            (3, FieldValue::Bytes(x)) => obj["type"] = json!(string(x)?),
            (4, FieldValue::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                string_data.insert(k, json!(string(&v)?));
            }
            (5, FieldValue::Varint(i)) => obj["immutable"] = json!(i != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        obj["stringData"] = Value::Object(string_data);
    }
    Ok(obj)
}

fn namespace(b: &[u8]) -> Result<Value> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Namespace"});
    for (n, v) in fields(b)? {
        if let (1, FieldValue::Bytes(x)) = (n, v) {
            obj["metadata"] = object_meta(x)?;
        }
    }
    Ok(obj)
}

/// Decodes a protobuf body (`k8s\0` + runtime.Unknown envelope) into the JSON object.
pub fn decode(body: &[u8]) -> Result<Value> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, v) in fields(envelope)? {
        match (n, v) {
            (1, FieldValue::Bytes(type_meta)) => {
                for (tn, tv) in fields(type_meta)? {
                    if let (2, FieldValue::Bytes(k)) = (tn, tv) {
                        kind = string(k)?;
                    }
                }
            }
            (2, FieldValue::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    match kind.as_str() {
        "Secret" => secret(raw),
        "Namespace" => namespace(raw),
        other => Err(ProtobufError::UnsupportedKind(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_bytes(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from(n << 3 | 2).unwrap_or(0),
            u8::try_from(b.len()).unwrap_or(0),
        ];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let meta = field_bytes(1, b"creds");
        let entry = [field_bytes(1, b"token"), field_bytes(2, b"abc")].concat();
        let secret = [
            field_bytes(1, &meta),
            field_bytes(2, &entry),
            field_bytes(3, b"Opaque"),
        ]
        .concat();
        let type_meta = [field_bytes(1, b"v1"), field_bytes(2, b"Secret")].concat();
        let body = [
            MAGIC.to_vec(),
            field_bytes(1, &type_meta),
            field_bytes(2, &secret),
        ]
        .concat();
        let obj = decode(&body).unwrap_or_default();
        assert_eq!(obj["metadata"]["name"], "creds");
        assert_eq!(obj["data"]["token"], "YWJj");
        assert_eq!(obj["type"], "Opaque");
        assert!(decode(b"nope").is_err());
        assert!(decode(&body[..body.len() - 2]).is_err());
    }
}
