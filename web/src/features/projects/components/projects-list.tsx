import { Link } from "react-router";

import { Empty, Loading, StatusBadge } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useProjects } from "../api";

export function ProjectsList({ projectPath }: { projectPath: (projectId: string) => string }) {
  const projects = useProjects();
  if (projects.isPending) return <Loading />;
  if (projects.isError) return <Empty title="Projects could not be loaded." />;
  const items = projects.data.items;
  if (items.length === 0) {
    return (
      <Empty title="No projects yet">
        <p className="muted">Create one to start recording experiments, or ask a colleague to add you to theirs.</p>
      </Empty>
    );
  }
  return (
    <ul className="project-grid" aria-label="Projects">
      {items.map((project) => (
        <li key={project.id} className="card project-card">
          <Link to={projectPath(project.id)} className="project-card-link">
            <span className="project-card-name">{project.name}</span>
            <StatusBadge status={project.role} />
          </Link>
          <p className="muted clamp">{project.description || "No description."}</p>
          <p className="project-card-meta">
            Created {formatDateTime(project.created_at)}
            {project.physical_only ? " · physical values only for viewers" : ""}
          </p>
        </li>
      ))}
    </ul>
  );
}
