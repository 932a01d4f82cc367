//! The Enroll domain, free of IO and of any async runtime.
//!
//! - [`status`]: [`RequestStatus`], the [`Action`]s that move a request, and
//!   [`transition`], the one function that decides every status change and
//!   who may make it.
//! - [`role`]: the [`Actor`] behind an action (client package, organization
//!   manager, central administrator).
//! - [`subject`]: the subject policy: validated certificate-request fields
//!   ([`SubjectFields`]) and the subject-name string other services expect.
//! - [`ids`]: newtypes for the domain's identifiers ([`RequestId`],
//!   [`OrgCode`], [`CountryCode`]).
//! - [`details`]: [`ClientDetails`], what the approver sees beside the
//!   subject.
//! - [`clock`]: time is passed in ([`Clock`]), never read inside the domain.

pub mod clock;
pub mod details;
pub mod ids;
pub mod role;
pub mod status;
pub mod subject;

pub use clock::{Clock, FixedClock, UnixTime};
pub use details::ClientDetails;
pub use ids::{CountryCode, OrgCode, RequestId};
pub use role::{Actor, Role};
pub use status::{Action, EnrollmentType, RequestKind, RequestStatus, TransitionError, transition};
pub use subject::{PolicyViolation, SubjectFields, SubjectInput};
