//! The factor tags that label a model in every result row (and in the demo zoo's model cards).

use serde::{Deserialize, Serialize};

/// The study's six factors (the sixth, test-time prompts, is the prompt set of each result row,
/// so it is not a tag of the model). A missing field reads as `"unknown"`; an unknown field is
/// an error (a misspelt factor would otherwise vanish from the results).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FactorTags {
    pub architecture: String,
    pub training_data: String,
    pub data_size: String,
    pub fine_tuning: String,
    pub loss: String,
}

impl Default for FactorTags {
    fn default() -> Self {
        let u = || "unknown".to_string();
        Self {
            architecture: u(),
            training_data: u(),
            data_size: u(),
            fine_tuning: u(),
            loss: u(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let t: FactorTags = serde_json::from_str(r#"{"loss": "siglip"}"#).unwrap();
        assert_eq!(t.loss, "siglip");
        assert_eq!(t.architecture, "unknown");
        assert_eq!(t.data_size, "unknown");
        let e = serde_json::from_str::<FactorTags>(r#"{"los": "siglip"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `los`"), "{e}");
        let back: FactorTags = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
