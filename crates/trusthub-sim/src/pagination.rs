//! Request parameters (form bodies and query strings) and list envelopes.
//!
//! Paging: `PageSize` (1…1000, default 50), `Page` (≥ 0), `PageToken`. The simulator's
//! `PageToken` is `PT<offset>` (opaque to clients, as Twilio's is); when present it wins over
//! `Page × PageSize`. Trust Hub lists carry `meta` with absolute URLs; API 2010 lists carry
//! `*_page_uri` fields relative to the host.

use serde_json::{Value, json};

use crate::error::ApiError;

/// Decoded `application/x-www-form-urlencoded` pairs, in order. Unknown names are kept but
/// ignored by handlers, as Twilio ignores unknown parameters (20001 is only a warning there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(
            url::form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Last value of `name` (Twilio takes one value per scalar parameter).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing_param(name)),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A requested page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page: usize,
    pub page_size: usize,
    pub offset: usize,
}

impl PageRequest {
    pub fn from_params(params: &Params) -> Result<PageRequest, ApiError> {
        let page_size = match params.get("PageSize") {
            None => 50,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => return Err(ApiError::invalid_param("PageSize", "must be 1..1000")),
            },
        };
        let page = match params.get("Page") {
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| ApiError::invalid_param("Page", "must be a non-negative integer"))?,
        };
        let offset = match params.get("PageToken") {
            None => page * page_size,
            Some(token) => token
                .strip_prefix("PT")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| ApiError::invalid_param("PageToken", "unknown page token"))?,
        };
        Ok(PageRequest {
            page,
            page_size,
            offset,
        })
    }
}

/// The positions of the requested page in a result of `total` rows.
pub fn page_range(total: usize, req: PageRequest) -> std::ops::Range<usize> {
    let start = req.offset.min(total);
    let end = (start + req.page_size).min(total);
    start..end
}

/// `path?filters&PageSize=..&Page=..[&PageToken=..]`
fn page_link(
    path: &str,
    filters: &[(&str, String)],
    size: usize,
    page: usize,
    token: Option<usize>,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters {
        query.append_pair(k, v);
    }
    query.append_pair("PageSize", &size.to_string());
    query.append_pair("Page", &page.to_string());
    if let Some(offset) = token {
        query.append_pair("PageToken", &format!("PT{offset}"));
    }
    format!("{path}?{}", query.finish())
}

/// Trust Hub list envelope: `{results, meta}`. `base` is the public base URL, `path` the
/// collection path (e.g. `/v1/TrustProducts`), `filters` the filter parameters in use.
pub fn trusthub_page(
    all: &[Value],
    req: PageRequest,
    base: &str,
    path: &str,
    filters: &[(&str, String)],
) -> Value {
    let range = page_range(all.len(), req);
    trusthub_list(all[range].to_vec(), all.len(), req, base, path, filters)
}

/// [`trusthub_page`] for a result of `total` rows of which the caller rendered only the
/// page's, `items` (the rows at [`page_range`]`(total, req)`).
pub fn trusthub_list(
    items: Vec<Value>,
    total: usize,
    req: PageRequest,
    base: &str,
    path: &str,
    filters: &[(&str, String)],
) -> Value {
    let has_next = page_range(total, req).end < total;
    let abs = format!("{base}{path}");
    let size = req.page_size;
    let current_token = (req.offset != req.page * size).then_some(req.offset);
    json!({
        "results": items,
        "meta": {
            "page": req.page,
            "page_size": size,
            "first_page_url": page_link(&abs, filters, size, 0, None),
            "previous_page_url": (req.page > 0 && req.offset >= size)
                .then(|| page_link(&abs, filters, size, req.page - 1, Some(req.offset - size))),
            "url": page_link(&abs, filters, size, req.page, current_token),
            "next_page_url": has_next
                .then(|| page_link(&abs, filters, size, req.page + 1, Some(req.offset + size))),
            "key": "results",
        }
    })
}

/// API 2010 list envelope: `{<key>: [...], first_page_uri, next_page_uri, ...}`.
///
/// The paging URIs are absolute: the spec declares them `format: uri` (and the spec wins), even
/// though Twilio's own examples, and Twilio in practice, send host-relative paths. Clients must
/// accept both (the operator's client keeps only the path and query of any next-page link).
pub fn api2010_page(
    key: &str,
    all: &[Value],
    req: PageRequest,
    base: &str,
    path: &str,
    filters: &[(&str, String)],
) -> Value {
    let range = page_range(all.len(), req);
    api2010_list(
        key,
        all[range].to_vec(),
        all.len(),
        req,
        base,
        path,
        filters,
    )
}

/// [`api2010_page`] for a result of `total` rows of which the caller rendered only the
/// page's, `items` (the rows at [`page_range`]`(total, req)`).
pub fn api2010_list(
    key: &str,
    items: Vec<Value>,
    total: usize,
    req: PageRequest,
    base: &str,
    path: &str,
    filters: &[(&str, String)],
) -> Value {
    let path = &format!("{base}{path}");
    let has_next = page_range(total, req).end < total;
    let size = req.page_size;
    let current_token = (req.offset != req.page * size).then_some(req.offset);
    let start = req.offset;
    let end = if items.is_empty() {
        start
    } else {
        start + items.len() - 1
    };
    json!({
        key: items,
        "first_page_uri": page_link(path, filters, size, 0, None),
        "next_page_uri": has_next
            .then(|| page_link(path, filters, size, req.page + 1, Some(req.offset + size))),
        "previous_page_uri": (req.page > 0 && req.offset >= size)
            .then(|| page_link(path, filters, size, req.page - 1, Some(req.offset - size))),
        "uri": page_link(path, filters, size, req.page, current_token),
        "page": req.page,
        "page_size": size,
        "start": start,
        "end": end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_tokens_and_stop() {
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let req = PageRequest::from_params(&Params::parse(b"PageSize=2&Status=draft")).unwrap();
        let first = trusthub_page(
            &all,
            req,
            "http://h",
            "/v1/TrustProducts",
            &[("Status", "draft".into())],
        );
        assert_eq!(first["results"], json!([0, 1]));
        let next = first["meta"]["next_page_url"].as_str().unwrap();
        assert_eq!(
            next,
            "http://h/v1/TrustProducts?Status=draft&PageSize=2&Page=1&PageToken=PT2"
        );
        let query = next.split_once('?').unwrap().1;
        let req = PageRequest::from_params(&Params::parse(query.as_bytes())).unwrap();
        let req = PageRequest {
            offset: 4,
            page: 2,
            ..req
        };
        let last = trusthub_page(&all, req, "http://h", "/v1/TrustProducts", &[]);
        assert_eq!(last["results"], json!([4]));
        assert!(last["meta"]["next_page_url"].is_null());
    }

    #[test]
    fn bad_page_size_is_refused() {
        let err = PageRequest::from_params(&Params::parse(b"PageSize=0")).unwrap_err();
        assert_eq!(err.code, 20422);
    }
}
