export { meKey, useMe, useSignOut, type Me } from "./api";
export { AuthCard } from "./components/auth-card";
export { RegisterForm } from "./components/register-form";
export { SignInForm } from "./components/sign-in-form";
