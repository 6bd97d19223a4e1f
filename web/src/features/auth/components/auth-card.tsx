import type { ReactNode } from "react";

import { Brand } from "../../../components/brand";

export function AuthCard({ title, subtitle, children, footer }: { title: string; subtitle: string; children: ReactNode; footer: ReactNode }) {
  return (
    <main className="auth-screen">
      <div className="auth-card">
        <Brand large />
        <h1>{title}</h1>
        <p className="muted">{subtitle}</p>
        {children}
        <footer className="auth-footer">{footer}</footer>
      </div>
      <p className="auth-aside">Experiment Tracking Platform · runs, sensors and live capture for the lab</p>
    </main>
  );
}
