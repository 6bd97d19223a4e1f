import { Link, Navigate, useNavigate, useSearchParams } from "react-router";

import { Loading } from "../../components/ui";
import { AuthCard, RegisterForm, SignInForm, useMe } from "../../features/auth";
import { paths } from "../paths";

/** Where to go after signing in: the page that asked for it, if it is one of ours. */
function useNext(): string {
  const [search] = useSearchParams();
  const next = search.get("next") ?? "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function SignInRoute() {
  const me = useMe();
  const next = useNext();
  const navigate = useNavigate();
  if (me.isPending) return <Loading />;
  if (me.data) return <Navigate to={next} replace />;
  const register = next === "/" ? paths.register : `${paths.register}?next=${encodeURIComponent(next)}`;
  return (
    <AuthCard
      title="Sign in"
      subtitle="Your projects, runs and live capture."
      footer={
        <>
          New to ETP? <Link to={register}>Create an account</Link>
        </>
      }
    >
      <SignInForm onSignedIn={() => navigate(next, { replace: true })} />
    </AuthCard>
  );
}

export function RegisterRoute() {
  const me = useMe();
  const next = useNext();
  const navigate = useNavigate();
  if (me.isPending) return <Loading />;
  if (me.data) return <Navigate to={next} replace />;
  return (
    <AuthCard
      title="Create your account"
      subtitle="Then create a project or ask to be added to one."
      footer={
        <>
          Already have an account? <Link to={paths.signIn}>Sign in</Link>
        </>
      }
    >
      <RegisterForm onRegistered={() => navigate(next === "/" ? paths.projects : next, { replace: true })} />
    </AuthCard>
  );
}
