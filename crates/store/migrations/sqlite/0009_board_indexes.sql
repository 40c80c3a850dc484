-- Indexes for the board at a million incidents, and cheaper intake (issue 4).
-- Most incidents are never merged and many are never dispatched to a department: partial
-- indexes skip those rows, so a new report writes two index entries fewer. A query that
-- compares the column (merged_into = $1, department = $1) implies IS NOT NULL, so both
-- backends still use them.
DROP INDEX incidents_merged;
CREATE INDEX incidents_merged ON incidents (merged_into) WHERE merged_into IS NOT NULL;
DROP INDEX incidents_department;
CREATE INDEX incidents_department ON incidents (department, id) WHERE department IS NOT NULL;
-- Scope by a grid or community reaches what was dispatched to a grid in it, too.
CREATE INDEX incidents_assignee ON incidents (assignee_area, id) WHERE assignee_area IS NOT NULL;
-- The board lists a category newest first: (category, id) walks it in that order.
DROP INDEX incidents_category;
CREATE INDEX incidents_category ON incidents (category, id);
-- Running steps newest first (the board's colour filters): the queue is a small share of
-- all incidents, and walking it by id finds a page without sorting every red one.
CREATE INDEX incidents_running ON incidents (id) WHERE due_at IS NOT NULL;
-- Scope by a community or a grid reads the grid an incident happened in (it stays visible
-- there when escalated); the owning area's index served nothing else.
DROP INDEX incidents_area;
CREATE INDEX incidents_grid ON incidents (grid, id) WHERE grid IS NOT NULL;
