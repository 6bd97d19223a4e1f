import { createContext, useContext } from "react";
import { Navigate, Outlet, useLocation } from "react-router";

import { Loading } from "../components/ui";
import { useMe, type Me } from "../features/auth";

// The user, handed down only while there is one: pages below never render with a null user, even
// in the render that follows a sign-out.
const SignedIn = createContext<Me | null>(null);

/** Pages behind it need a session: without one, the sign-in page, which comes back here after. */
export function RequireSession() {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) {
    return (
      <div className="splash">
        <Loading label="Opening ETP…" />
      </div>
    );
  }
  if (me.isError) {
    return (
      <div className="splash">
        <p>The portal cannot reach the gateway. Reload to try again.</p>
      </div>
    );
  }
  if (me.data === null) {
    const next = `${location.pathname}${location.search}`;
    return <Navigate to={next === "/" ? "/signin" : `/signin?next=${encodeURIComponent(next)}`} replace />;
  }
  return (
    <SignedIn.Provider value={me.data}>
      <Outlet />
    </SignedIn.Provider>
  );
}

/** The signed-in user, below RequireSession. */
export function useSignedIn(): Me {
  const me = useContext(SignedIn);
  if (me === null) {
    throw new Error("useSignedIn outside RequireSession");
  }
  return me;
}
