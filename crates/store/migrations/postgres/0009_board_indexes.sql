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
