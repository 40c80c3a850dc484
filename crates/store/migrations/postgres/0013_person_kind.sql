-- A person's kind of residence (人口类型: registered 户籍, resident 常住, floating 流动) and
-- the tags the grid's care work follows (独居老人, 残疾人, 退役军人, 留守儿童, 低保户), as
-- sorted comma-separated codes ('' for none). Rows stored before this migration are
-- registered population without tags.
ALTER TABLE persons ADD COLUMN population_type TEXT NOT NULL DEFAULT 'registered';
ALTER TABLE persons ADD COLUMN tags TEXT NOT NULL DEFAULT '';
