export { experimentKeys, useExperiment, type Experiment, type ExperimentFilters } from "./api";
export { CreateExperimentDialog } from "./components/create-experiment-dialog";
export { ExperimentFiltersBar } from "./components/experiment-filters";
export { ExperimentHeader } from "./components/experiment-header";
export { ExperimentsTable } from "./components/experiments-table";
export { filtersFromSearch, searchFromFilters } from "./filters";
export { experimentActions } from "./status";
