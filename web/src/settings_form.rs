//! The settings form: what the admin typed, checked with core's own `Config::validate`
//! before it is sent, and turned into the partial `PUT /config` body (changed fields only,
//! plus the version read, so a concurrent change is refused rather than overwritten).

use std::collections::BTreeMap;

use opti_core::Config;
use serde_json::{json, Map, Value};

/// The form's text fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsForm {
    pub threshold: String,
    /// Per-class overrides; an empty string means "no override".
    pub class_thresholds: BTreeMap<String, String>,
    pub audit_rate: String,
    pub retrain_min: String,
    pub lease_seconds: String,
    pub drift_tolerance: String,
}

impl SettingsForm {
    /// The form showing `config`, with a row for each of `classes`.
    pub fn from_config(config: &Config, classes: &[String]) -> Self {
        let mut class_thresholds: BTreeMap<String, String> =
            classes.iter().map(|c| (c.clone(), String::new())).collect();
        for (c, t) in &config.class_thresholds {
            class_thresholds.insert(c.clone(), t.to_string());
        }
        Self {
            threshold: config.threshold.to_string(),
            class_thresholds,
            audit_rate: config.audit_rate.to_string(),
            retrain_min: config.retrain_min.to_string(),
            lease_seconds: config.lease_seconds.to_string(),
            drift_tolerance: config.drift.tolerance.to_string(),
        }
    }

    /// The configuration the form describes, applied onto `current`, validated by core.
    pub fn to_config(&self, current: &Config) -> Result<Config, String> {
        fn num<T: std::str::FromStr>(name: &str, s: &str) -> Result<T, String> {
            s.trim()
                .parse()
                .map_err(|_| format!("{name}: {s:?} is not a number"))
        }
        let mut c = current.clone();
        c.threshold = num("threshold", &self.threshold)?;
        c.class_thresholds = BTreeMap::new();
        for (class, t) in &self.class_thresholds {
            if !t.trim().is_empty() {
                c.class_thresholds
                    .insert(class.clone(), num(&format!("threshold for {class}"), t)?);
            }
        }
        c.audit_rate = num("audit rate", &self.audit_rate)?;
        c.retrain_min = num("retrain minimum", &self.retrain_min)?;
        c.lease_seconds = num("lease seconds", &self.lease_seconds)?;
        c.drift.tolerance = num("drift tolerance", &self.drift_tolerance)?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// The `PUT /config` body: the fields that differ from `current`, and `version`.
    /// `Ok(None)` when nothing changed.
    pub fn patch(&self, current: &Config, version: u64) -> Result<Option<Value>, String> {
        let next = self.to_config(current)?;
        let mut body = Map::new();
        if next.threshold != current.threshold {
            body.insert("threshold".into(), json!(next.threshold));
        }
        if next.class_thresholds != current.class_thresholds {
            body.insert("class_thresholds".into(), json!(next.class_thresholds));
        }
        if next.audit_rate != current.audit_rate {
            body.insert("audit_rate".into(), json!(next.audit_rate));
        }
        if next.retrain_min != current.retrain_min {
            body.insert("retrain_min".into(), json!(next.retrain_min));
        }
        if next.lease_seconds != current.lease_seconds {
            body.insert("lease_seconds".into(), json!(next.lease_seconds));
        }
        if next.drift.tolerance != current.drift.tolerance {
            body.insert("drift".into(), json!({"tolerance": next.drift.tolerance}));
        }
        if body.is_empty() {
            return Ok(None);
        }
        body.insert("version".into(), json!(version));
        Ok(Some(Value::Object(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["defect".into(), "stain".into()]
    }

    #[test]
    fn only_changed_fields_are_sent_with_the_version_read() {
        let current = Config::default();
        let mut form = SettingsForm::from_config(&current, &classes());
        assert_eq!(form.patch(&current, 3), Ok(None));
        form.threshold = "0.7".into();
        form.class_thresholds.insert("stain".into(), "0.5".into());
        form.retrain_min = "25".into();
        let body = form.patch(&current, 3).expect("valid").expect("a change");
        assert_eq!(
            body,
            json!({"threshold": 0.7f32, "class_thresholds": {"stain": 0.5f32}, "retrain_min": 25, "version": 3})
        );
    }

    #[test]
    fn out_of_range_or_garbage_input_is_refused_with_the_field_named() {
        let current = Config::default();
        let mut form = SettingsForm::from_config(&current, &classes());
        form.audit_rate = "1.5".into();
        let err = form.patch(&current, 1).expect_err("refused");
        assert!(err.contains("audit_rate"), "{err}");
        form.audit_rate = "lots".into();
        let err = form.patch(&current, 1).expect_err("refused");
        assert!(err.contains("audit rate"), "{err}");
    }
}
