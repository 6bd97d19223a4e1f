import { Navigate } from "react-router";

import { lastProject } from "../last-project";
import { paths } from "../paths";
import { useSignedIn } from "../require-session";

/** `/`: the project used last, if the user still has it; else the list of projects. */
export function HomeRoute() {
  const me = useSignedIn();
  const last = lastProject();
  const project = me.projects.find((item) => item.id === last) ?? (me.projects.length === 1 ? me.projects[0] : undefined);
  return <Navigate to={project ? paths.experiments(project.id) : paths.projects} replace />;
}
