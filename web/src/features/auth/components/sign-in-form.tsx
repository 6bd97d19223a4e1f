import { useState, type FormEvent } from "react";

import { Button, Field, Input } from "../../../components/ui";
import { useSignIn, type Me } from "../api";

export function SignInForm({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const signIn = useSignIn();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");

  function submit(event: FormEvent) {
    event.preventDefault();
    signIn.mutate({ username, password }, { onSuccess: onSignedIn });
  }

  return (
    <form className="form" onSubmit={submit} aria-label="Sign in">
      <Field label="Username or email">
        {(props) => <Input {...props} name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />}
      </Field>
      <Field label="Password">
        {(props) => <Input {...props} name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />}
      </Field>
      <Button type="submit" variant="primary" busy={signIn.isPending} className="btn-block">
        Sign in
      </Button>
    </form>
  );
}
