//! What a dataset is used for (`[[dataset]] role`).

use serde::{Deserialize, Serialize};

/// What a dataset is used for; decides which stages read it by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetRole {
    Id,
    Shift,
    Ood,
    Factors,
    CueConflict,
    Retrieval,
    Corruption,
    Correspondence,
}

impl DatasetRole {
    /// The name used in configs and in the `role` column of result tables.
    pub fn name(self) -> &'static str {
        atlas_stagekit::stage::Role::from(self).as_str()
    }
}

impl From<DatasetRole> for atlas_stagekit::stage::Role {
    fn from(r: DatasetRole) -> Self {
        use atlas_stagekit::stage::Role;
        match r {
            DatasetRole::Id => Role::Id,
            DatasetRole::Shift => Role::Shift,
            DatasetRole::Ood => Role::Ood,
            DatasetRole::Factors => Role::Factors,
            DatasetRole::CueConflict => Role::CueConflict,
            DatasetRole::Retrieval => Role::Retrieval,
            DatasetRole::Corruption => Role::Corruption,
            DatasetRole::Correspondence => Role::Correspondence,
        }
    }
}

impl From<atlas_stagekit::stage::Role> for DatasetRole {
    fn from(r: atlas_stagekit::stage::Role) -> Self {
        use atlas_stagekit::stage::Role;
        match r {
            Role::Id => DatasetRole::Id,
            Role::Shift => DatasetRole::Shift,
            Role::Ood => DatasetRole::Ood,
            Role::Factors => DatasetRole::Factors,
            Role::CueConflict => DatasetRole::CueConflict,
            Role::Retrieval => DatasetRole::Retrieval,
            Role::Corruption => DatasetRole::Corruption,
            Role::Correspondence => DatasetRole::Correspondence,
        }
    }
}
