//! `civicgrid user …` and the demo district's accounts.

use std::io::BufRead;

use domain::demo::DemoDistrict;
use domain::{AreaCode, Level, Role};
use store::Db;
use store::audit::Actor;
use store::auth::{NewAccount, random_secret};

use crate::{Failure, UserCommand};

/// Read a password and its confirmation: two lines on standard input.
fn read_password_twice() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut next = |what: &str| -> Result<String, Failure> {
        match lines.next() {
            Some(Ok(l)) => Ok(l.trim_end_matches(['\r', '\n']).to_string()),
            Some(Err(e)) => Err(Failure(format!("cannot read the {what} from standard input: {e}"))),
            None => Err(Failure(format!("standard input ended before the {what}: give the password and its confirmation on two lines"))),
        }
    };
    let first = next("password")?;
    let second = next("confirmation")?;
    if first != second {
        return Err(Failure("the password and its confirmation differ".into()));
    }
    Ok(first)
}

pub async fn run(command: UserCommand, db: &Db) -> Result<(), Failure> {
    match command {
        UserCommand::Add { name, role, area, department, display_name, temporary } => {
            let role: Role = role.parse()?;
            let area = AreaCode::parse(&area)?;
            let password = read_password_twice()?;
            let acc = db
                .create_account(
                    &Actor::cli("user add"),
                    NewAccount {
                        display_name: display_name.unwrap_or_else(|| name.clone()),
                        username: name,
                        role,
                        area,
                        department,
                        password,
                        temporary,
                    },
                )
                .await?;
            println!("created account {} (id {}, {} in {})", acc.username, acc.id, acc.role, acc.area);
            Ok(())
        }
        UserCommand::Passwd { name } => {
            let acc = db.account_by_username(&name).await?.ok_or_else(|| Failure(format!("no account named {name}")))?;
            let password = read_password_twice()?;
            db.set_password(&Actor::cli("user passwd"), acc.id, &password, false, None).await?;
            println!("password of {} changed; its sessions ended and its tokens were revoked", acc.username);
            Ok(())
        }
        UserCommand::Disable { name } => {
            let acc = db.account_by_username(&name).await?.ok_or_else(|| Failure(format!("no account named {name}")))?;
            db.set_active(&Actor::cli("user disable"), acc.id, false).await?;
            println!("account {} disabled", acc.username);
            Ok(())
        }
    }
}

/// A password generated for this run: 16 hex digits in groups, e.g. `7f3a-9c21-b0e4-55d2`.
fn generated_password() -> Result<String, Failure> {
    let s = random_secret()?;
    Ok(format!("{}-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12], &s[12..16]))
}

/// One account per role in the demo district. Returns (username, role, area, password).
pub async fn demo_accounts(db: &Db, district: &DemoDistrict) -> Result<Vec<(String, Role, AreaCode, String)>, Failure> {
    let first = |level: Level| -> Result<AreaCode, Failure> {
        district
            .areas
            .iter()
            .find(|a| a.level == level)
            .map(|a| a.code.clone())
            .ok_or_else(|| Failure(format!("the demo has no {level}")))
    };
    let (d, s, c, g) = (first(Level::District)?, first(Level::Street)?, first(Level::Community)?, first(Level::Grid)?);
    let plan: [(&str, &str, Role, &AreaCode, Option<&str>); 12] = [
        ("admin", "系统管理员", Role::Admin, &d, None),
        ("auditor", "审计员", Role::Auditor, &d, None),
        ("operator", "坐席员", Role::Operator, &d, None),
        ("dispatcher", "派遣员", Role::Dispatcher, &d, None),
        ("shiftlead", "值班长", Role::ShiftLead, &d, None),
        ("dept", "城管局处置员", Role::DepartmentHandler, &d, Some("cgj")),
        ("street", "街道工作人员", Role::StreetStaff, &s, None),
        ("community", "社区工作人员", Role::CommunityStaff, &c, None),
        ("gridleader", "网格长", Role::GridLeader, &g, None),
        ("gridworker", "网格员", Role::GridWorker, &g, None),
        ("volunteer", "志愿者", Role::Volunteer, &g, None),
        ("apiclient", "数据共享接口", Role::ApiClient, &d, None),
    ];
    let actor = Actor::cli("demo");
    let mut out = Vec::new();
    for (username, display, role, area, department) in plan {
        let password = generated_password()?;
        db.create_account(
            &actor,
            NewAccount {
                username: username.into(),
                display_name: display.into(),
                role,
                area: area.clone(),
                department: department.map(Into::into),
                password: password.clone(),
                temporary: false,
            },
        )
        .await?;
        out.push((username.to_string(), role, area.clone(), password));
    }
    Ok(out)
}

/// Open work for the demo's own accounts, made through the same loop as any report, so
/// that each of them finds something on signing in: the department handler a new
/// dispatch, the grid worker an item dispatched to the grid and one to verify. Returns how
/// many incidents it made.
pub async fn demo_worklist(db: &Db, district: &DemoDistrict) -> Result<usize, Failure> {
    use domain::incident::Action;
    use store::incidents::{NewIncident, Source, TransitionInput};
    let grid = district.areas.iter().find(|a| a.level == Level::Grid).ok_or_else(|| Failure("the demo has no grid".into()))?;
    let b = grid.bbox().ok_or_else(|| Failure("the demo grid has no extent".into()))?;
    let point = ((b.min().y + b.max().y) / 2.0, (b.min().x + b.max().x) / 2.0);
    let who = |username: &'static str| async move {
        let a = db.account_by_username(username).await?.ok_or_else(|| Failure(format!("no demo account {username}")))?;
        Ok::<_, Failure>(domain::Principal {
            account_id: a.id,
            username: a.username,
            display_name: a.display_name,
            role: a.role,
            area: a.area,
            department: a.department,
            credential: domain::access::Credential::Session("demo".into()),
            must_change_password: false,
        })
    };
    let (worker, operator, dispatcher, dept) = (who("gridworker").await?, who("operator").await?, who("dispatcher").await?, who("dept").await?);
    let step = |p: &domain::Principal, id: i64, version: i64, action: Action, input: TransitionInput| {
        let p = p.clone();
        async move {
            let s = db.scoped(&p, Actor::cli("demo"));
            let desk = s.incidents().ok_or_else(|| Failure(format!("{} works no incidents", p.username)))?;
            desk.transition(id, version, action, &input).await.map(|i| i.version).map_err(|e| Failure(format!("demo worklist, {}: {e:?}", action.as_str())))
        }
    };
    let report = |p: &domain::Principal, category: &str, description: &str, source: Source| {
        let (p, new) = (p.clone(), NewIncident {
            category: category.into(),
            description: description.into(),
            point: Some(point),
            address: None,
            source,
            grid: Some(grid.code.clone()),
            reporter_phone: None,
        });
        async move {
            let s = db.scoped(&p, Actor::cli("demo"));
            let desk = s.incidents().ok_or_else(|| Failure(format!("{} reports no incidents", p.username)))?;
            Ok::<_, Failure>(desk.report(new, None).await?.0)
        }
    };
    let to_dept = || TransitionInput { department: Some("cgj".into()), ..TransitionInput::default() };
    let to_grid = || TransitionInput { grid: Some(grid.code.clone()), ..TransitionInput::default() };
    let note = |n: &str| TransitionInput { note: n.into(), ..TransitionInput::default() };
    // 1. A grid patrol's report, filed and dispatched to the city management bureau.
    let a = report(&worker, "C0101", "井盖缺失，行人有坠落危险", Source::GridPatrol).await?;
    let v = step(&operator, a.id, a.version, Action::File, note("")).await?;
    step(&dispatcher, a.id, v, Action::Dispatch, to_dept()).await?;
    // 2. A hotline call, dispatched to the grid itself.
    let b = report(&operator, "E0201", "楼道堆放杂物，影响通行（12345 来电）", Source::Hotline).await?;
    let v = step(&operator, b.id, b.version, Action::File, note("")).await?;
    step(&dispatcher, b.id, v, Action::Dispatch, to_grid()).await?;
    // 3. Handled by the bureau, waiting for the grid worker's check on site.
    let c = report(&worker, "C0104", "路灯不亮", Source::GridPatrol).await?;
    let v = step(&operator, c.id, c.version, Action::File, note("")).await?;
    let v = step(&dispatcher, c.id, v, Action::Dispatch, to_dept()).await?;
    let v = step(&dept, c.id, v, Action::Accept, note("")).await?;
    step(&dept, c.id, v, Action::Handle, note("已更换灯泡")).await?;
    Ok(3)
}
