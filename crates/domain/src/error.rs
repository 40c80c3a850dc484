//! Domain errors. Each has a stable snake_case `code()` that the API puts in its
//! problem+json bodies and that the UI translates; the message is for operators.

use crate::area::Level;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("not an area code: {0:?} (6, 9, 12 or 15 digits)")]
    InvalidAreaCode(String),
    #[error("unknown level {0:?} (district, street, community, grid, dedicated)")]
    InvalidLevel(String),
    #[error("unknown dedicated grid kind {0:?}")]
    InvalidDedicatedKind(String),
    #[error("unknown team role {0:?}")]
    InvalidTeamRole(String),
    #[error("code {code} has {} digits but a {level} code has {expected}", code.len())]
    CodeLevelMismatch { code: String, level: Level, expected: usize },
    #[error("code {code}: the last segment is out of range for a {level} (grid 001-899, dedicated 900-999)")]
    GridSegmentRange { code: String, level: Level },
    #[error("code {code} does not extend its parent's code {parent}")]
    CodeNotUnderParent { code: String, parent: String },
    #[error("{code} is a {level} but its parent {parent} is a {parent_level}")]
    ParentLevelMismatch { code: String, level: Level, parent: String, parent_level: Level },
    #[error("{0} needs a parent")]
    MissingParent(String),
    #[error("{code} is a district and cannot have a parent ({parent})")]
    UnexpectedParent { code: String, parent: String },
    #[error("latitude must be a number from -90 to 90, got {0:?}")]
    InvalidLatitude(String),
    #[error("longitude must be a number from -180 to 180, got {0:?}")]
    InvalidLongitude(String),
    #[error("{0}")]
    InvalidGeometry(String),
    #[error("unknown role {0:?}")]
    InvalidRole(String),
    #[error("not a mainland mobile number: {0:?} (11 digits starting 13-19)")]
    InvalidPhone(String),
    #[error("invalid category: {0}")]
    InvalidCategory(String),
    #[error("not a time limit: {0:?} (working hours like 4h, or working days like 3d)")]
    InvalidTimeLimit(String),
}

impl DomainError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidAreaCode(_) => "invalid_area_code",
            DomainError::InvalidLevel(_) => "invalid_level",
            DomainError::InvalidDedicatedKind(_) => "invalid_dedicated_kind",
            DomainError::InvalidTeamRole(_) => "invalid_team_role",
            DomainError::CodeLevelMismatch { .. } => "code_level_mismatch",
            DomainError::GridSegmentRange { .. } => "grid_segment_range",
            DomainError::CodeNotUnderParent { .. } => "code_not_under_parent",
            DomainError::ParentLevelMismatch { .. } => "parent_level_mismatch",
            DomainError::MissingParent(_) => "missing_parent",
            DomainError::UnexpectedParent { .. } => "unexpected_parent",
            DomainError::InvalidLatitude(_) => "invalid_latitude",
            DomainError::InvalidLongitude(_) => "invalid_longitude",
            DomainError::InvalidGeometry(_) => "invalid_geometry",
            DomainError::InvalidRole(_) => "invalid_role",
            DomainError::InvalidPhone(_) => "invalid_phone",
            DomainError::InvalidCategory(_) => "invalid_category",
            DomainError::InvalidTimeLimit(_) => "invalid_time_limit",
        }
    }
}

/// Parse a WGS-84 point from user text. NaN, infinities and out-of-range values are refused.
pub fn parse_point(lat: &str, lon: &str) -> Result<(f64, f64), DomainError> {
    let lat_v = lat
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (-90.0..=90.0).contains(v))
        .ok_or_else(|| DomainError::InvalidLatitude(lat.to_string()))?;
    let lon_v = lon
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (-180.0..=180.0).contains(v))
        .ok_or_else(|| DomainError::InvalidLongitude(lon.to_string()))?;
    Ok((lat_v, lon_v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_refuse_nan_and_range() {
        assert_eq!(parse_point("27.24", "111.46"), Ok((27.24, 111.46)));
        for (lat, lon) in [("NaN", "111"), ("91", "111"), ("x", "1"), ("inf", "1"), ("", "1")] {
            assert_eq!(parse_point(lat, lon).expect_err("refused").code(), "invalid_latitude");
        }
        assert_eq!(parse_point("27", "181").expect_err("refused").code(), "invalid_longitude");
        assert_eq!(parse_point("27", "-nan").expect_err("refused").code(), "invalid_longitude");
    }
}
