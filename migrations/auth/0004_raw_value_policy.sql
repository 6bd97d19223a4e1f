-- A project's raw-value policy: with physical_only, its viewers see physical values only.
ALTER TABLE projects ADD COLUMN physical_only boolean NOT NULL DEFAULT false;
