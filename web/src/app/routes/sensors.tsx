import { useCallback, useMemo, useState } from "react";
import { useSearchParams } from "react-router";

import { Button, PageHeader } from "../../components/ui";
import { RegisterSensorDialog, SensorFiltersBar, SensorsTable, searchFromSensorFilters, sensorFiltersFromSearch, type SensorFilters } from "../../features/sensors";
import { paths } from "../paths";
import { useProjectContext } from "./project-layout";

export function SensorsRoute() {
  const { project, canEdit, canManage } = useProjectContext();
  const [registering, setRegistering] = useState(false);
  const [search, setSearch] = useSearchParams();
  const filters = useMemo(() => sensorFiltersFromSearch(search), [search]);
  const setFilters = useCallback((next: SensorFilters) => setSearch(searchFromSensorFilters(next), { replace: true }), [setSearch]);
  const registerButton = canEdit ? (
    <Button variant="primary" onClick={() => setRegistering(true)}>
      Register sensor
    </Button>
  ) : null;
  return (
    <div className="page">
      <PageHeader eyebrow={project.name} title="Sensors" actions={registerButton}>
        <p className="lead">Liveness is re-read every 5 s: online while readings keep coming, delayed, then offline (10 s and 60 s by default).</p>
      </PageHeader>
      <SensorFiltersBar filters={filters} onChange={setFilters} />
      <SensorsTable projectId={project.id} filters={filters} canManage={canManage} sensorPath={(sensorId) => paths.sensor(project.id, sensorId)} emptyAction={registerButton} />
      {canEdit ? <RegisterSensorDialog projectId={project.id} open={registering} onClose={() => setRegistering(false)} /> : null}
    </div>
  );
}
