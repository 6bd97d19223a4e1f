import { NavLink, Outlet, useMatch, useNavigate } from "react-router";

import { Brand } from "../components/brand";
import { useSignOut } from "../features/auth";
import { ProjectSwitcher } from "../features/projects";
import { useSignedIn } from "./require-session";
import { paths } from "./paths";

/** The frame of every signed-in page: the side bar (project switcher, sections, user) and the page. */
export function Shell() {
  const me = useSignedIn();
  const signOut = useSignOut();
  const navigate = useNavigate();
  const inProject = useMatch("/projects/:projectId/*");
  const projectId = inProject?.params.projectId;
  const section = inProject?.params["*"]?.split("/")[0] ?? "experiments";

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar" aria-label="Navigation">
        <Brand />
        {projectId ? (
          <>
            <ProjectSwitcher
              projectId={projectId}
              onSwitch={(next) => navigate(section === "members" ? paths.members(next) : section === "sensors" ? paths.sensors(next) : paths.experiments(next))}
            />
            <nav className="nav" aria-label="Project">
              <NavLink to={paths.experiments(projectId)} className={() => (section === "experiments" || section === "runs" ? "nav-link active" : "nav-link")}>
                <Icon d="M4 5h16M4 12h16M4 19h10" /> Experiments
              </NavLink>
              <NavLink to={paths.sensors(projectId)} className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
                <Icon d="M12 12m-2 0a2 2 0 1 0 4 0a2 2 0 1 0-4 0M7.8 16.2a6 6 0 0 1 0-8.4M16.2 7.8a6 6 0 0 1 0 8.4M5 19a10 10 0 0 1 0-14M19 5a10 10 0 0 1 0 14" /> Sensors
              </NavLink>
              <NavLink to={paths.monitor(projectId)} className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
                <Icon d="M3 12h4l3-8 4 16 3-8h4" /> Live monitor
              </NavLink>
              <NavLink to={paths.members(projectId)} className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
                <Icon d="M16 19v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1M9.5 10a3 3 0 1 0 0-6 3 3 0 0 0 0 6M21 19v-1a4 4 0 0 0-3-3.9M15 4.1a3 3 0 0 1 0 5.8" /> Members
              </NavLink>
            </nav>
          </>
        ) : null}
        <nav className="nav" aria-label="Workspace">
          <NavLink to={paths.projects} end className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
            <Icon d="M3 7l9-4 9 4-9 4-9-4zM3 12l9 4 9-4M3 17l9 4 9-4" /> All projects
          </NavLink>
          <a className="nav-link" href="/docs">
            <Icon d="M6 3h9l4 4v14H6zM14 3v5h5" /> API reference
          </a>
        </nav>
        <div className="sidebar-user">
          <span className="avatar" aria-hidden="true">
            {me.username.slice(0, 1).toUpperCase()}
          </span>
          <span className="sidebar-user-name" title={me.email}>
            {me.username}
          </span>
          <button
            type="button"
            className="btn btn-ghost btn-sm"
            onClick={() => signOut.mutate(undefined, { onSettled: () => navigate(paths.signIn) })}
          >
            Sign out
          </button>
        </div>
      </aside>
      <main id="main" className="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

function Icon({ d }: { d: string }) {
  return (
    <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={d} />
    </svg>
  );
}
