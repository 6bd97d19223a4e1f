export { sensorKeys, useSensor, useSensors, type Sensor } from "./api";
export { IngestErrors } from "./components/ingest-errors";
export { RegisterSensorDialog } from "./components/register-sensor-dialog";
export { SensorProjects } from "./components/sensor-projects";
export { SensorFiltersBar } from "./components/sensor-filters";
export { SensorsTable } from "./components/sensors-table";
export { searchFromSensorFilters, sensorFiltersFromSearch, type SensorFilters } from "./filters";
export { ProfileDialog } from "./profiles/profile-dialog";
export { ProfileTimeline } from "./profiles/profile-timeline";
