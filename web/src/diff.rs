//! Before → after of an audit event as a list of changed fields: both JSON values are
//! flattened to `path = value` pairs and compared, so a reviewer's edit reads as
//! `review.verdict: – → defective` rather than two blobs of JSON.

use std::collections::BTreeMap;

use serde_json::Value;

/// One field that differs between before and after (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Flattens `v` into `path → scalar JSON text` (arrays indexed `a[0]`; an empty object
/// or array is kept as a leaf so that its appearance shows).
pub fn flatten(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

fn walk(v: &Value, path: String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(child, p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                walk(child, format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            let text = match leaf {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(
                if path.is_empty() {
                    "value".into()
                } else {
                    path
                },
                text,
            );
        }
    }
}

/// Whether `m` has fields below `path` (`path.x` or `path[0]`).
fn has_children(m: &BTreeMap<String, String>, path: &str) -> bool {
    m.keys().any(|k| {
        k.len() > path.len()
            && k.starts_with(path)
            && matches!(k.as_bytes()[path.len()], b'.' | b'[')
    })
}

/// The fields that changed from `before` to `after`, in path order. A field that is
/// `null` on one side and an object on the other shows as its inner fields only (a
/// claim released reads `claim.reviewer: ana → –`, without a `claim: – → null` row).
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let b = before.map(flatten).unwrap_or_default();
    let a = after.map(flatten).unwrap_or_default();
    let mut paths: Vec<&String> = b.keys().chain(a.keys()).collect();
    paths.sort();
    paths.dedup();
    let null_parent = |p: &str,
                       one: &BTreeMap<String, String>,
                       other: &BTreeMap<String, String>| {
        one.get(p).is_some_and(|v| v == "null") && !other.contains_key(p) && has_children(other, p)
    };
    paths
        .into_iter()
        .filter(|p| b.get(*p) != a.get(*p))
        .filter(|p| !null_parent(p, &b, &a) && !null_parent(p, &a, &b))
        .map(|p| FieldChange {
            path: p.clone(),
            before: b.get(p).cloned(),
            after: a.get(p).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_review_shows_as_the_fields_it_changed() {
        let before = json!({"status": "claimed", "version": 3, "detections": [{"class": "stain"}], "review": null});
        let after = json!({"status": "reviewed", "version": 4, "detections": [{"class": "fracture"}],
            "review": {"verdict": "defective"}});
        let c = changes(Some(&before), Some(&after));
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            ["detections[0].class", "review.verdict", "status", "version"]
        );
        assert_eq!(c[0].before.as_deref(), Some("stain"));
        assert_eq!(c[0].after.as_deref(), Some("fracture"));
        assert_eq!(c[1].before, None);
        assert_eq!(c[1].after.as_deref(), Some("defective"));
    }

    #[test]
    fn a_released_claim_shows_its_fields_going_not_a_null_row() {
        let before = json!({"claim": {"reviewer": "ana", "expires_at": "t1"}});
        let after = json!({"claim": null});
        let c = changes(Some(&before), Some(&after));
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["claim.expires_at", "claim.reviewer"]);
        assert_eq!(c[1].before.as_deref(), Some("ana"));
        assert_eq!(c[1].after, None);
        // A null replaced by a scalar (or the reverse) is still a change of its own.
        let c = changes(
            Some(&json!({"notes": null})),
            Some(&json!({"notes": "chipped"})),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].before.as_deref(), Some("null"));
    }

    #[test]
    fn a_creation_lists_every_field_as_new_and_equal_values_list_nothing() {
        let after = json!({"threshold": 0.7});
        let c = changes(None, Some(&after));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].after.as_deref(), Some("0.7"));
        assert!(changes(Some(&after), Some(&after)).is_empty());
    }
}
