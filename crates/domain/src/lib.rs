//! civicgrid's domain core (领域核心): value types, the area tree and its scope, geometry
//! rules, the point → grid index and the demo district.
//!
//! Pure: no database, no HTTP, no async runtime, no clock reads. The clock and the random
//! source are passed in ([`clock::Clock`], [`rng::Rng`]).

pub mod access;
pub mod area;
pub mod audit;
pub mod calendar;
pub mod catalogue;
pub mod clock;
pub mod demo;
pub mod error;
pub mod geometry;
pub mod history;
pub mod incident;
pub mod kpi;
pub mod locate;
pub mod names;
pub mod photo;
pub mod population;
pub mod register;
pub mod rng;
pub mod time;

pub use access::{Credential, Phone, Principal, Role};
pub use area::{AreaCode, DedicatedKind, Level, Scope, TeamMember, TeamRole};
pub use error::DomainError;
pub use geometry::AreaRecord;
pub use locate::GridIndex;
pub use register::{CitizenId, CreditCode, Relation};
