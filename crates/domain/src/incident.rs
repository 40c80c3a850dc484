//! The closed loop of an incident (DOMAIN.md §3) as a state machine: report → file →
//! dispatch → accept → handle → verify → close → evaluate, with rejection, merging,
//! returns of mis-dispatches, extensions, rework, handling on the spot, escalation,
//! supervision (督办), shelving (挂账) and voiding (作废).
//!
//! Every change of an incident goes through [`apply`]; the store writes the transition and
//! the new state in one transaction, with an optimistic version check.

use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::area::Level;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// 上报: reported, waiting to be filed.
    Reported,
    /// 立案: filed, waiting to be dispatched.
    Filed,
    /// 派遣: dispatched, waiting to be accepted.
    Dispatched,
    /// 处置中: accepted by the department or grid.
    InProgress,
    /// 已处置: the handler reported a result, waiting for the on-site check.
    Handled,
    /// 核查通过: checked on site, waiting to be closed.
    Verified,
    /// 结案
    Closed,
    /// 已评价: the reporter rated the outcome.
    Evaluated,
    /// 不予立案
    Rejected,
    /// 已合并: a duplicate, merged into another incident.
    Merged,
    /// 挂账: a long-term item, kept open outside the time limits.
    Shelved,
    /// 作废
    Voided,
}

impl State {
    pub const ALL: [State; 12] = [
        State::Reported,
        State::Filed,
        State::Dispatched,
        State::InProgress,
        State::Handled,
        State::Verified,
        State::Closed,
        State::Evaluated,
        State::Rejected,
        State::Merged,
        State::Shelved,
        State::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Reported => "reported",
            State::Filed => "filed",
            State::Dispatched => "dispatched",
            State::InProgress => "in_progress",
            State::Handled => "handled",
            State::Verified => "verified",
            State::Closed => "closed",
            State::Evaluated => "evaluated",
            State::Rejected => "rejected",
            State::Merged => "merged",
            State::Shelved => "shelved",
            State::Voided => "voided",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            State::Reported => "待立案",
            State::Filed => "待派遣",
            State::Dispatched => "待接收",
            State::InProgress => "处置中",
            State::Handled => "待核查",
            State::Verified => "待结案",
            State::Closed => "已结案",
            State::Evaluated => "已评价",
            State::Rejected => "不予立案",
            State::Merged => "已合并",
            State::Shelved => "挂账",
            State::Voided => "已作废",
        }
    }

    /// Still in the loop (time limits run, work is owed).
    pub fn is_open(self) -> bool {
        matches!(self, State::Reported | State::Filed | State::Dispatched | State::InProgress | State::Handled | State::Verified)
    }

    /// The step whose time limit runs in this state.
    pub fn step(self) -> Option<Step> {
        match self {
            State::Reported => Some(Step::File),
            State::Filed => Some(Step::Dispatch),
            State::Dispatched | State::InProgress => Some(Step::Handle),
            State::Handled => Some(Step::Verify),
            _ => None,
        }
    }
}

impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown state {s:?}"))
    }
}

/// The timed steps of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    File,
    Dispatch,
    Handle,
    Verify,
}

/// What a transition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    File,
    Reject,
    Merge,
    Dispatch,
    Accept,
    Return,
    RequestExtension,
    ApproveExtension,
    DenyExtension,
    Handle,
    HandleOnSpot,
    Verify,
    FailVerification,
    Close,
    Evaluate,
    Reopen,
    Escalate,
    Supervise,
    Shelve,
    Unshelve,
    Void,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::File,
        Action::Reject,
        Action::Merge,
        Action::Dispatch,
        Action::Accept,
        Action::Return,
        Action::RequestExtension,
        Action::ApproveExtension,
        Action::DenyExtension,
        Action::Handle,
        Action::HandleOnSpot,
        Action::Verify,
        Action::FailVerification,
        Action::Close,
        Action::Evaluate,
        Action::Reopen,
        Action::Escalate,
        Action::Supervise,
        Action::Shelve,
        Action::Unshelve,
        Action::Void,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::File => "file",
            Action::Reject => "reject",
            Action::Merge => "merge",
            Action::Dispatch => "dispatch",
            Action::Accept => "accept",
            Action::Return => "return",
            Action::RequestExtension => "request_extension",
            Action::ApproveExtension => "approve_extension",
            Action::DenyExtension => "deny_extension",
            Action::Handle => "handle",
            Action::HandleOnSpot => "handle_on_spot",
            Action::Verify => "verify",
            Action::FailVerification => "fail_verification",
            Action::Close => "close",
            Action::Evaluate => "evaluate",
            Action::Reopen => "reopen",
            Action::Escalate => "escalate",
            Action::Supervise => "supervise",
            Action::Shelve => "shelve",
            Action::Unshelve => "unshelve",
            Action::Void => "void",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown action {s:?}"))
    }
}

/// Who is acting on the incident, as far as the loop cares: the signed-in role, or the
/// resident who reported it (through the receipt, without an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Staff(Role),
    Reporter,
    /// civicgrid itself: the time-limit watcher escalates overdue work by policy.
    System,
}

/// The facts of an incident the loop decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loop {
    pub state: State,
    /// The level the incident is owned at (a grid's incident escalates to its community …).
    pub level: Level,
    /// An extension request waits for approval.
    pub extension_pending: bool,
    /// 督办: a leader supervises it.
    pub supervised: bool,
    /// The reporter reopened it once already.
    pub reopened: bool,
    /// Its category may be handled on the spot by a grid worker.
    pub on_spot_allowed: bool,
    pub returns: u32,
    pub reworks: u32,
}

impl Loop {
    pub fn new(on_spot_allowed: bool) -> Loop {
        Loop {
            state: State::Reported,
            level: Level::Grid,
            extension_pending: false,
            supervised: false,
            reopened: false,
            on_spot_allowed,
            returns: 0,
            reworks: 0,
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{action} is not allowed when the incident is {state}; allowed: {}", allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))]
    NotAllowed { action: &'static str, state: &'static str, allowed: Vec<Action> },
    #[error("your role may not {action} this incident")]
    Forbidden { action: &'static str },
    #[error("a satisfaction rating is from 1 to 5")]
    BadRating,
}

impl TransitionError {
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::NotAllowed { .. } => "transition_not_allowed",
            TransitionError::Forbidden { .. } => "transition_forbidden",
            TransitionError::BadRating => "invalid_rating",
        }
    }
}

fn staff(a: Actor, roles: &[Role]) -> bool {
    matches!(a, Actor::Staff(r) if roles.contains(&r))
}

const CENTRE: &[Role] = &[Role::Operator, Role::Dispatcher, Role::ShiftLead];
const DISPATCHERS: &[Role] = &[Role::Dispatcher, Role::ShiftLead];
const LEADS: &[Role] = &[Role::ShiftLead];
/// Who handles dispatched work: a department, or the grid's and community's people.
const HANDLERS: &[Role] = &[Role::DepartmentHandler, Role::GridLeader, Role::GridWorker, Role::CommunityStaff, Role::StreetStaff];
const ON_SITE: &[Role] = &[Role::GridLeader, Role::GridWorker];
const LOCAL: &[Role] = &[Role::GridLeader, Role::GridWorker, Role::CommunityStaff, Role::StreetStaff];

/// Whether `action` fits the incident's state (ignoring who asks).
fn fits(l: &Loop, action: Action) -> bool {
    use State::*;
    match action {
        Action::File | Action::Reject => l.state == Reported,
        Action::Merge => matches!(l.state, Reported | Filed),
        Action::Dispatch => l.state == Filed,
        Action::Accept => l.state == Dispatched,
        Action::Return => matches!(l.state, Dispatched | InProgress),
        Action::RequestExtension => l.state == InProgress && !l.extension_pending,
        Action::ApproveExtension | Action::DenyExtension => l.state == InProgress && l.extension_pending,
        Action::Handle => l.state == InProgress,
        Action::HandleOnSpot => l.state == Reported && l.on_spot_allowed,
        Action::Verify | Action::FailVerification => l.state == Handled,
        Action::Close => l.state == Verified,
        Action::Evaluate => l.state == Closed,
        Action::Reopen => matches!(l.state, Closed | Evaluated) && !l.reopened,
        Action::Escalate => l.state.is_open() && l.level != Level::District,
        Action::Supervise => l.state.is_open() && !l.supervised,
        Action::Shelve => matches!(l.state, Filed | Dispatched | InProgress),
        Action::Unshelve => l.state == Shelved,
        Action::Void => l.state.is_open() || l.state == Shelved,
    }
}

/// Whether `who` may take `action` (the scope of the incident is checked by the store).
fn may(who: Actor, action: Action) -> bool {
    match action {
        Action::File | Action::Reject | Action::Merge => staff(who, CENTRE),
        Action::Dispatch => staff(who, DISPATCHERS),
        Action::Accept | Action::Return | Action::RequestExtension | Action::Handle => staff(who, HANDLERS),
        Action::ApproveExtension | Action::DenyExtension | Action::Shelve | Action::Unshelve | Action::Void => staff(who, LEADS),
        Action::HandleOnSpot | Action::Verify | Action::FailVerification => staff(who, ON_SITE),
        Action::Close => staff(who, DISPATCHERS),
        Action::Evaluate | Action::Reopen => who == Actor::Reporter || staff(who, CENTRE),
        Action::Escalate => staff(who, LOCAL) || who == Actor::System,
        Action::Supervise => staff(who, &[Role::ShiftLead, Role::StreetStaff]) || who == Actor::System,
    }
}

/// Whether a staff role may ever take `action` (whatever the incident's state): e.g. who
/// sees the bulk dispatch controls.
pub fn role_may(role: Role, action: Action) -> bool {
    may(Actor::Staff(role), action)
}

/// The actions `who` may take now.
pub fn allowed(l: &Loop, who: Actor) -> Vec<Action> {
    Action::ALL.into_iter().filter(|a| fits(l, *a) && may(who, *a)).collect()
}

/// Apply an action; returns the incident after it. `rating` is the evaluation's 1–5.
pub fn apply(l: &Loop, who: Actor, action: Action, rating: Option<u8>) -> Result<Loop, TransitionError> {
    if !fits(l, action) {
        let allowed = allowed(l, who);
        return Err(TransitionError::NotAllowed { action: action.as_str(), state: l.state.as_str(), allowed });
    }
    if !may(who, action) {
        return Err(TransitionError::Forbidden { action: action.as_str() });
    }
    let mut n = l.clone();
    match action {
        Action::File => n.state = State::Filed,
        Action::Reject => n.state = State::Rejected,
        Action::Merge => n.state = State::Merged,
        Action::Dispatch => n.state = State::Dispatched,
        Action::Accept => n.state = State::InProgress,
        Action::Return => {
            n.state = State::Filed;
            n.returns += 1;
            n.extension_pending = false;
        }
        Action::RequestExtension => n.extension_pending = true,
        Action::ApproveExtension | Action::DenyExtension => n.extension_pending = false,
        Action::Handle | Action::HandleOnSpot => {
            n.state = State::Handled;
            n.extension_pending = false;
        }
        Action::Verify => n.state = State::Verified,
        Action::FailVerification => {
            // 返工: back to the handler.
            n.state = State::InProgress;
            n.reworks += 1;
        }
        Action::Close => n.state = State::Closed,
        Action::Evaluate => {
            if !rating.is_some_and(|r| (1..=5).contains(&r)) {
                return Err(TransitionError::BadRating);
            }
            n.state = State::Evaluated;
        }
        Action::Reopen => {
            n.state = State::Filed;
            n.reopened = true;
        }
        Action::Escalate => {
            n.level = match l.level {
                Level::Grid | Level::Dedicated => Level::Community,
                Level::Community => Level::Street,
                Level::Street | Level::District => Level::District,
            };
        }
        Action::Supervise => n.supervised = true,
        Action::Shelve => n.state = State::Shelved,
        Action::Unshelve => n.state = State::Filed,
        Action::Void => n.state = State::Voided,
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(r: Role) -> Actor {
        Actor::Staff(r)
    }

    fn run(l: &Loop, steps: &[(Actor, Action)]) -> Loop {
        steps.iter().fold(l.clone(), |l, (who, a)| apply(&l, *who, *a, Some(4)).unwrap_or_else(|e| panic!("{a:?}: {e}")))
    }

    #[test]
    fn the_whole_loop() {
        let l = run(
            &Loop::new(false),
            &[
                (s(Role::Operator), Action::File),
                (s(Role::Dispatcher), Action::Dispatch),
                (s(Role::DepartmentHandler), Action::Accept),
                (s(Role::DepartmentHandler), Action::RequestExtension),
                (s(Role::ShiftLead), Action::ApproveExtension),
                (s(Role::DepartmentHandler), Action::Handle),
                (s(Role::GridWorker), Action::FailVerification),
                (s(Role::DepartmentHandler), Action::Handle),
                (s(Role::GridWorker), Action::Verify),
                (s(Role::Dispatcher), Action::Close),
                (Actor::Reporter, Action::Evaluate),
            ],
        );
        assert_eq!(l.state, State::Evaluated);
        assert_eq!(l.reworks, 1);
        // A dissatisfied reporter may reopen once, not twice.
        let l = run(&l, &[(Actor::Reporter, Action::Reopen)]);
        assert_eq!(l.state, State::Filed);
        let l = run(&l, &[(s(Role::Dispatcher), Action::Dispatch), (s(Role::GridWorker), Action::Accept), (s(Role::GridWorker), Action::Handle), (s(Role::GridLeader), Action::Verify), (s(Role::ShiftLead), Action::Close)]);
        assert!(matches!(apply(&l, Actor::Reporter, Action::Reopen, None), Err(TransitionError::NotAllowed { .. })));
    }

    #[test]
    fn refusals_name_what_is_allowed() {
        let l = Loop::new(false);
        match apply(&l, s(Role::Dispatcher), Action::Close, None) {
            Err(TransitionError::NotAllowed { allowed, .. }) => {
                assert!(allowed.contains(&Action::File) && allowed.contains(&Action::Reject) && !allowed.contains(&Action::Close));
            }
            other => panic!("{other:?}"),
        }
        // The right state but the wrong role.
        assert!(matches!(apply(&l, s(Role::Volunteer), Action::File, None), Err(TransitionError::Forbidden { .. })));
        assert!(matches!(apply(&l, s(Role::Auditor), Action::Void, None), Err(TransitionError::Forbidden { .. })));
        // On the spot only where the category allows it.
        assert!(apply(&l, s(Role::GridWorker), Action::HandleOnSpot, None).is_err());
        let spot = apply(&Loop::new(true), s(Role::GridWorker), Action::HandleOnSpot, None).expect("on the spot");
        assert_eq!(spot.state, State::Handled, "still verified afterwards");
    }

    #[test]
    fn returns_escalation_supervision_shelving() {
        let l = run(&Loop::new(false), &[(s(Role::Operator), Action::File), (s(Role::Dispatcher), Action::Dispatch)]);
        let l = run(&l, &[(s(Role::DepartmentHandler), Action::Return)]);
        assert_eq!((l.state, l.returns), (State::Filed, 1));
        let l = run(&l, &[(s(Role::GridWorker), Action::Escalate), (s(Role::CommunityStaff), Action::Escalate), (s(Role::StreetStaff), Action::Escalate)]);
        assert_eq!(l.level, Level::District);
        assert!(apply(&l, s(Role::StreetStaff), Action::Escalate, None).is_err(), "nothing above the district");
        let l = run(&l, &[(s(Role::ShiftLead), Action::Supervise)]);
        assert!(l.supervised && apply(&l, s(Role::ShiftLead), Action::Supervise, None).is_err());
        let l = run(&l, &[(s(Role::ShiftLead), Action::Shelve)]);
        assert!(!l.state.is_open() && l.state.step().is_none());
        let l = run(&l, &[(s(Role::ShiftLead), Action::Unshelve), (s(Role::ShiftLead), Action::Void)]);
        assert_eq!(l.state, State::Voided);
        assert!(allowed(&l, s(Role::ShiftLead)).is_empty(), "nothing follows a void");
        assert!(matches!(apply(&run(&Loop::new(false), &[(s(Role::Operator), Action::File), (s(Role::Dispatcher), Action::Dispatch), (s(Role::GridWorker), Action::Accept), (s(Role::GridWorker), Action::Handle), (s(Role::GridWorker), Action::Verify), (s(Role::Dispatcher), Action::Close)]), Actor::Reporter, Action::Evaluate, Some(9)), Err(TransitionError::BadRating)));
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        for st in State::ALL {
            assert_eq!(st.as_str().parse::<State>(), Ok(st));
        }
    }
}
