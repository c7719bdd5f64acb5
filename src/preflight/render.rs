//! The report as text: an aligned table (one line per finding, then profiles, SHAKEN/STIR
//! products and per-account coverage, then the verdict) or JSON.

use super::{PreflightError, Report};

/// Columns padded to their widest cell; the last column is not padded.
fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let last = row.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count());
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The verdict line: `result: ...` with the exit code.
pub fn verdict(report: &Report) -> String {
    match &report.reason {
        None => format!("result: onboarding can proceed (exit {})", report.exit_code),
        Some(reason) => format!(
            "result: cannot proceed: {reason} (exit {})",
            report.exit_code
        ),
    }
}

/// The whole report as the table printed by default.
pub fn table(report: &Report) -> String {
    let findings: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            vec![
                f.check.label().to_owned(),
                f.outcome.label().to_owned(),
                f.detail.clone(),
            ]
        })
        .collect();
    let mut out = columns(&["CHECK", "RESULT", "DETAIL"], &findings);
    if !report.profiles.is_empty() {
        let rows: Vec<Vec<String>> = report
            .profiles
            .iter()
            .map(|p| {
                vec![
                    p.sid.clone(),
                    p.status.clone(),
                    p.valid_until.clone().unwrap_or_else(|| "-".into()),
                    if p.primary { "primary" } else { "other" }.to_owned(),
                    p.friendly_name.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&columns(
            &["PROFILE", "STATUS", "VALID UNTIL", "POLICY", "NAME"],
            &rows,
        ));
    }
    if !report.products.is_empty() {
        let rows: Vec<Vec<String>> = report
            .products
            .iter()
            .map(|p| {
                vec![
                    p.sid.clone(),
                    p.status.clone(),
                    if p.profiles.is_empty() {
                        "-".to_owned()
                    } else {
                        p.profiles.join(",")
                    },
                    p.numbers.to_string(),
                    p.friendly_name.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&columns(
            &[
                "SHAKEN/STIR PRODUCT",
                "STATUS",
                "PROFILE",
                "NUMBERS",
                "NAME",
            ],
            &rows,
        ));
    }
    if !report.coverage.is_empty() {
        out.push('\n');
        out.push_str(&coverage(report));
    }
    out.push('\n');
    out.push_str(&verdict(report));
    out.push('\n');
    out
}

fn coverage(report: &Report) -> String {
    let rows: Vec<Vec<String>> = report
        .coverage
        .iter()
        .map(|c| {
            vec![
                c.account_sid.clone(),
                c.status.clone(),
                c.voice_numbers.to_string(),
                c.on_profile.to_string(),
                c.on_product.to_string(),
                c.friendly_name.clone(),
            ]
        })
        .collect();
    columns(
        &[
            "ACCOUNT",
            "STATUS",
            "VOICE NUMBERS",
            "ON PROFILE",
            "ON PRODUCT",
            "NAME",
        ],
        &rows,
    )
}

/// The report as pretty JSON (`-o json`).
pub fn json(report: &Report) -> Result<String, PreflightError> {
    serde_json::to_string_pretty(report)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| PreflightError::Render(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_do_not_pad_the_last_one() {
        let out = columns(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z z".into()],
                vec!["x".into(), "yyyy".into(), String::new()],
            ],
        );
        assert_eq!(out, "A    BB    C\nxxx  y     z z\nx    yyyy\n");
    }
}
