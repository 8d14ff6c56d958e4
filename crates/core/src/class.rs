//! Class names of the active model. They come from the model's metadata, never from a
//! hard-coded list; [`ClassNames::default_line`] is only the shipped model's set, used
//! by the simulator and by tests.

use serde::{Deserialize, Serialize};

/// The classes a model knows, indexed by the model's class id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassNames(pub Vec<String>);

impl ClassNames {
    /// The four classes of the synthetic production line and the shipped default model.
    pub fn default_line() -> Self {
        Self(
            ["defect", "fracture", "stain", "misalignment"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }

    /// Name of class `id`, if the model has it.
    pub fn name(&self, id: usize) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    /// Id of the class called `name`, if the model has it.
    pub fn id(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|n| n == name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}
