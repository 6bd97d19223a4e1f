import { useProjects } from "../api";

/** The project picker of the side bar: a native select (keyboard and screen readers for free). */
export function ProjectSwitcher({ projectId, onSwitch }: { projectId: string; onSwitch: (projectId: string) => void }) {
  const projects = useProjects();
  const items = projects.data?.items ?? [];
  const known = items.some((project) => project.id === projectId);
  return (
    <div className="switcher">
      <label htmlFor="project-switcher" className="switcher-label">
        Project
      </label>
      <select id="project-switcher" className="input select switcher-select" value={projectId} onChange={(e) => onSwitch(e.target.value)}>
        {!known ? <option value={projectId}>{projects.isPending ? "Loading…" : "Unknown project"}</option> : null}
        {items.map((project) => (
          <option key={project.id} value={project.id}>
            {project.name}
          </option>
        ))}
      </select>
    </div>
  );
}
