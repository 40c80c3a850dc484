-- The running step's time limit, stored (issue 4): the board filters by warning colour and
-- the watcher finds overdue steps through an index instead of recomputing every deadline.
-- Both are recomputed when the work calendar changes. NULL: no step is running (closed,
-- shelved, void …) or the category has no limits.
ALTER TABLE incidents ADD COLUMN warn_at BIGINT;
ALTER TABLE incidents ADD COLUMN due_at BIGINT;
-- Working time (ms) granted to the running step by approved extensions (延期), and asked
-- for by a pending request.
ALTER TABLE incidents ADD COLUMN extension_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN extension_requested_ms BIGINT NOT NULL DEFAULT 0;
-- Some step of this incident ran past its limit (for the on-time closure rate).
ALTER TABLE incidents ADD COLUMN late BIGINT NOT NULL DEFAULT 0;
-- When it was closed (结案), for handling times.
ALTER TABLE incidents ADD COLUMN closed_at BIGINT;
CREATE INDEX incidents_due ON incidents (due_at) WHERE due_at IS NOT NULL;
