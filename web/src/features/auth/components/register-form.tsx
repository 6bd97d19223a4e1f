import { useState, type FormEvent } from "react";

import { Button, Field, Input } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useRegister, type Me } from "../api";

export function RegisterForm({ onRegistered }: { onRegistered: (me: Me) => void }) {
  const register = useRegister();
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");

  function submit(event: FormEvent) {
    event.preventDefault();
    register.mutate({ username, email, password }, { onSuccess: onRegistered });
  }

  const error = register.error;
  return (
    <form className="form" onSubmit={submit} aria-label="Create account">
      <Field label="Username" hint="3–32 letters, digits, dots, dashes or underscores." error={fieldError(error, "username")}>
        {(props) => <Input {...props} name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />}
      </Field>
      <Field label="Email" error={fieldError(error, "email")}>
        {(props) => <Input {...props} name="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />}
      </Field>
      <Field label="Password" hint="At least 8 characters." error={fieldError(error, "password")}>
        {(props) => <Input {...props} name="password" type="password" autoComplete="new-password" required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} />}
      </Field>
      <Button type="submit" variant="primary" busy={register.isPending} className="btn-block">
        Create account
      </Button>
    </form>
  );
}
