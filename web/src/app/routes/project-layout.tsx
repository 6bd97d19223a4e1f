import { useEffect } from "react";
import { Link, Outlet, useOutletContext, useParams } from "react-router";

import { Empty, Loading } from "../../components/ui";
import { permissions, useProject, type Project } from "../../features/projects";
import { isApiError } from "../../lib/api";
import { rememberProject } from "../last-project";
import { paths } from "../paths";

export interface ProjectContext {
  project: Project;
  canEdit: boolean;
  canManage: boolean;
}

/** Pages of one project: the project (with the caller's role) loaded once for all of them. */
export function ProjectLayout() {
  const { projectId = "" } = useParams();
  const project = useProject(projectId);
  useEffect(() => {
    if (project.data) rememberProject(project.data.id);
  }, [project.data]);

  if (project.isPending) return <Loading />;
  if (project.isError) {
    return (
      <div className="page">
        <Empty title={isApiError(project.error, 404) || isApiError(project.error, 422) ? "No such project, or you are not one of its members." : "The project could not be loaded."}>
          <Link to={paths.projects}>All projects</Link>
        </Empty>
      </div>
    );
  }
  const context: ProjectContext = { project: project.data, ...permissions(project.data.role) };
  return <Outlet context={context} />;
}

export function useProjectContext(): ProjectContext {
  return useOutletContext<ProjectContext>();
}
