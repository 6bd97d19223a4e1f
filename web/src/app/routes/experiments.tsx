import { useCallback, useMemo, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";

import { Button, PageHeader } from "../../components/ui";
import {
  CreateExperimentDialog,
  ExperimentFiltersBar,
  ExperimentsTable,
  filtersFromSearch,
  searchFromFilters,
  type ExperimentFilters,
} from "../../features/experiments";
import { paths } from "../paths";
import { useProjectContext } from "./project-layout";

export function ExperimentsRoute() {
  const { project, canEdit } = useProjectContext();
  const [search, setSearch] = useSearchParams();
  const filters = useMemo(() => filtersFromSearch(search), [search]);
  const setFilters = useCallback((next: ExperimentFilters) => setSearch(searchFromFilters(next), { replace: true }), [setSearch]);
  const [creating, setCreating] = useState(false);
  const navigate = useNavigate();

  const createButton = canEdit ? (
    <Button variant="primary" onClick={() => setCreating(true)}>
      New experiment
    </Button>
  ) : null;
  return (
    <div className="page">
      <PageHeader eyebrow={project.name} title="Experiments" actions={createButton}>
        {project.description ? <p className="lead">{project.description}</p> : null}
      </PageHeader>
      <ExperimentFiltersBar filters={filters} onChange={setFilters} />
      <ExperimentsTable
        projectId={project.id}
        filters={filters}
        canEdit={canEdit}
        experimentPath={(experimentId) => paths.experiment(project.id, experimentId)}
        emptyAction={createButton}
      />
      {canEdit ? (
        <CreateExperimentDialog
          projectId={project.id}
          open={creating}
          onClose={() => setCreating(false)}
          onCreated={(experiment) => {
            setCreating(false);
            navigate(paths.experiment(project.id, experiment.id));
          }}
        />
      ) : null}
    </div>
  );
}
