import { Link } from "react-router";

import { Empty } from "../../components/ui";
import { paths } from "../paths";

export function NotFoundRoute() {
  return (
    <div className="page">
      <Empty title="There is no page at this address.">
        <Link to={paths.projects}>All projects</Link>
      </Empty>
    </div>
  );
}
