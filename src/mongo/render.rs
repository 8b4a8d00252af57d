//! Documents for people (a table) and for scripts (relaxed Extended JSON). Pure.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use mongodb::bson::{Bson, Document};

/// One column per field, in the order fields first appear; a document without a field has an
/// empty cell. Strings are shown bare, dates in ISO 8601, everything else as relaxed
/// Extended JSON.
pub fn table(documents: &[Document]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for document in documents {
        for key in document.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(columns.iter().copied());
    for document in documents {
        table.add_row(
            columns
                .iter()
                .map(|column| document.get(*column).map(cell).unwrap_or_default()),
        );
    }
    table.to_string()
}

/// One value in a cell.
pub fn cell(value: &Bson) -> String {
    match value {
        Bson::String(s) => s.clone(),
        Bson::DateTime(d) => d
            .try_to_rfc3339_string()
            .unwrap_or_else(|_| d.timestamp_millis().to_string()),
        Bson::ObjectId(id) => id.to_hex(),
        Bson::Null => "null".to_owned(),
        Bson::Double(d) if d.is_finite() => {
            let text = d.to_string();
            if text.contains('.') || text.contains('e') {
                text
            } else {
                format!("{text}.0")
            }
        }
        other => other.clone().into_relaxed_extjson().to_string(),
    }
}

/// The documents as a JSON array of relaxed Extended JSON, one line.
pub fn json(documents: &[Document]) -> serde_json::Value {
    serde_json::Value::Array(
        documents
            .iter()
            .map(|d| Bson::Document(d.clone()).into_relaxed_extjson())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{DateTime, doc};

    use super::*;

    #[test]
    fn columns_are_the_union_of_fields_in_first_seen_order() {
        let shown = table(&[
            doc! { "product_id": 1, "average": 4.5 },
            doc! { "product_id": 2, "reviews": 3_i64, "tags": ["a", "b"] },
        ]);
        let lines: Vec<&str> = shown.lines().collect();
        let header = lines[1];
        let order: Vec<usize> = ["product_id", "average", "reviews", "tags"]
            .iter()
            .map(|c| header.find(c).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{shown}");
        assert!(shown.contains("4.5"), "{shown}");
        assert!(shown.contains(r#"["a","b"]"#), "{shown}");
    }

    #[test]
    fn cells_are_readable() {
        assert_eq!(cell(&Bson::String("x".into())), "x");
        assert_eq!(cell(&Bson::Double(4.0)), "4.0");
        assert_eq!(cell(&Bson::Int32(4)), "4");
        assert_eq!(
            cell(&Bson::DateTime(DateTime::from_millis(1_767_225_600_000))),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(cell(&Bson::Document(doc! { "a": 1 })), r#"{"a":1}"#);
    }

    #[test]
    fn json_is_relaxed_extended_json() {
        let value = json(&[doc! { "at": DateTime::from_millis(0), "n": 1_i64 }]);
        assert_eq!(
            value.to_string(),
            r#"[{"at":{"$date":"1970-01-01T00:00:00Z"},"n":1}]"#
        );
    }
}
