//! The point → grid index as a derived view of the store: built from it at start, then
//! kept current from the change log. Readers take a snapshot (`Arc<GridIndex>`) and never
//! wait for a rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use domain::geometry::AreaRecord;
use domain::{AreaCode, GridIndex, Level};

use crate::areas::AreaFilter;
use crate::db::Db;
use crate::StoreError;

/// Follows the change log and keeps a [`GridIndex`] of every basic and dedicated grid.
#[derive(Debug)]
pub struct GridFollower {
    state: tokio::sync::Mutex<FollowState>,
    current: RwLock<Arc<GridIndex>>,
}

#[derive(Debug, Default)]
struct FollowState {
    last_seq: i64,
    grids: BTreeMap<AreaCode, AreaRecord>,
}

impl GridFollower {
    /// Build from the store as it is now.
    pub async fn start(db: &Db) -> Result<GridFollower, StoreError> {
        // Read the sequence first: a change that lands during the load is applied again
        // on the next refresh, which is harmless.
        let last_seq = db.last_change_seq().await?;
        let grids = load_grids(db).await?;
        let index = GridIndex::build(grids.values());
        Ok(GridFollower {
            state: tokio::sync::Mutex::new(FollowState { last_seq, grids }),
            current: RwLock::new(Arc::new(index)),
        })
    }

    /// The index as of the last refresh.
    pub fn snapshot(&self) -> Arc<GridIndex> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The last change-log sequence number applied.
    pub async fn last_seq(&self) -> i64 {
        self.state.lock().await.last_seq
    }

    /// Apply every change logged since the last refresh. Returns how many area changes
    /// were applied (0: the index was already current).
    pub async fn refresh(&self, db: &Db) -> Result<usize, StoreError> {
        let mut state = self.state.lock().await;
        let mut applied = 0;
        loop {
            let batch = db.changes_since(state.last_seq, 5000).await?;
            let Some(last) = batch.last().map(|c| c.seq) else { break };
            let changed: BTreeSet<AreaCode> =
                batch.iter().filter(|c| c.entity == "area").filter_map(|c| AreaCode::parse(&c.key).ok()).collect();
            if changed.len() > FULL_RELOAD_AFTER {
                // A bulk load (a demo, a district-wide import): one query beats thousands.
                state.grids = load_grids(db).await?;
            } else {
                for code in &changed {
                    match db.area_record(code).await? {
                        Some(r) if r.level.is_grid() => {
                            state.grids.insert(code.clone(), r);
                        }
                        _ => {
                            state.grids.remove(code);
                        }
                    }
                }
            }
            applied += changed.len();
            state.last_seq = last;
        }
        if applied > 0 {
            let index = Arc::new(GridIndex::build(state.grids.values()));
            match self.current.write() {
                Ok(mut g) => *g = index,
                Err(poisoned) => *poisoned.into_inner() = index,
            }
        }
        Ok(applied)
    }
}

/// Above this many changed areas in one batch, the follower reloads every grid at once.
const FULL_RELOAD_AFTER: usize = 500;

async fn load_grids(db: &Db) -> Result<BTreeMap<AreaCode, AreaRecord>, StoreError> {
    let mut grids = BTreeMap::new();
    for level in [Level::Grid, Level::Dedicated] {
        for r in db.area_records(&AreaFilter { level: Some(level), ..AreaFilter::default() }).await? {
            grids.insert(r.code.clone(), r);
        }
    }
    Ok(grids)
}
