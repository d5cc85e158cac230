//! The usage rows as CSV (RFC 4180), with the columns of [`crate::usage`]'s counter list.
use super::UsageRow;
use crate::usage::{counters, kind_column, ACTIVITY, KINDS, STOCK};

/// The CSV columns, in order (`bytes_by_kind` flattened to `<kind>_bytes`).
pub fn csv_header() -> String {
    let mut cols: Vec<String> = vec!["tenant_id".into(), "env".into()];
    cols.extend(STOCK.map(String::from));
    cols.extend(KINDS.iter().map(|(_, _, n)| kind_column(n)));
    cols.extend(ACTIVITY.map(String::from));
    cols.extend(["gb_days", "estimated_cost"].map(String::from));
    cols.join(",")
}

/// `[$r.field, ..]` of the stock or the activity counters.
macro_rules! values {
    ($part:ident, $r:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        values!(@ $part [$($r.$s),*] [$($r.$a),*])
    };
    (@ stock [$($s:expr),*] [$($a:expr),*]) => { [$($s),*] };
    (@ activity [$($s:expr),*] [$($a:expr),*]) => { [$($a),*] };
}

/// RFC 4180 CSV with a header line; tenant ids and envs never need quoting, but are quoted if
/// they would.
pub fn csv(rows: &[UsageRow]) -> String {
    let mut out = csv_header();
    out.push_str("\r\n");
    for r in rows {
        let mut f: Vec<String> = vec![quote(&r.tenant_id), quote(&r.env)];
        f.extend(counters!(values!(stock, r)).map(|v: i64| v.to_string()));
        f.extend(
            KINDS
                .iter()
                .map(|(_, _, n)| r.bytes_by_kind.get(n).copied().unwrap_or(0).to_string()),
        );
        f.extend(counters!(values!(activity, r)).map(|v: i64| v.to_string()));
        f.push(r.gb_days.map(|v| v.to_string()).unwrap_or_default());
        f.push(r.estimated_cost.map(|v| v.to_string()).unwrap_or_default());
        out.push_str(&f.join(","));
        out.push_str("\r\n");
    }
    out
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_one_line_per_row() {
        let mut r = UsageRow {
            tenant_id: "acme".into(),
            env: "prod".into(),
            objects: 2,
            ..UsageRow::default()
        };
        r.bytes_by_kind.insert("image", 7);
        let text = csv(&[r]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{text}");
        let header: Vec<&str> = lines[0].split(',').collect();
        let row: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(header.len(), row.len());
        let at = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(at("tenant_id"), "acme");
        assert_eq!(at("objects"), "2");
        assert_eq!(at("image_bytes"), "7");
        assert_eq!(at("estimated_cost"), "");
        assert_eq!(quote("a,b"), "\"a,b\"");
    }

    #[test]
    fn the_header_is_unchanged() {
        assert_eq!(
            csv_header(),
            "tenant_id,env,objects,logical_bytes,physical_bytes,preview_bytes,replay_bytes,\
             audit_bytes,image_bytes,video_bytes,audio_bytes,bundle_bytes,raw_bytes,uploads,\
             upload_bytes,download_urls,download_url_bytes,downloads,download_bytes,dedup_hits,\
             dedup_bytes_saved,purges,reclaimed_bytes,cdn_requests,cdn_bytes,gb_days,\
             estimated_cost"
        );
    }
}
