"""`generator bootstrap`: converge Keycloak, PostgreSQL and the S3 bucket for one site."""

from __future__ import annotations

import sys
from typing import TextIO

from bootstrap import DEFAULT_TIMEOUT
from bootstrap.credentials import admin_login
from bootstrap.report import CREATED, Report
from bootstrap.vault import Vault
from generator.errors import UsageError
from generator.layout import Repo
from generator.loader import load_site
from generator.output import Format, emit
from generator.secrets.store import SecretsFile

STEPS = ("keycloak", "postgres", "bucket")


def run_bootstrap(repo: Repo, site_name: str, *, only: tuple[str, ...] = (), dry_run: bool = False,
                  offline: bool = False, rotate_client_secret: bool = False, timeout: float = DEFAULT_TIMEOUT,
                  out: TextIO = sys.stdout, output: Format = "table") -> int:
    """The report streams line by line as a table; with -o json or yaml the actions are printed at the end as
    rows (those done before a failure too) and every other line goes to stderr."""
    site = load_site(repo, site_name)
    if output != "table":
        report = Report(dry_run=dry_run or offline)
        try:
            return _run(repo, site, site_name, only, dry_run, offline, rotate_client_secret, timeout, sys.stderr,
                        report)
        finally:
            emit(report.rows(), output, lambda: "", out)
    return _run(repo, site, site_name, only, dry_run, offline, rotate_client_secret, timeout, out,
                Report(dry_run=dry_run or offline, out=out))


def _run(repo: Repo, site, site_name: str, only: tuple[str, ...], dry_run: bool, offline: bool,  # noqa: ANN001
         rotate_client_secret: bool, timeout: float, out: TextIO, report: Report) -> int:
    if offline:
        return _offline_plan(site, only, out, report)
    store = SecretsFile(repo, site_name)
    if not store.exists():
        raise UsageError(f"{store.rel}: missing; run 'generator secrets init --site {site_name}' first")
    vault = Vault.open(store, dry_run)
    selected = [s for s in STEPS if not only or s in only]
    if "bucket" in selected and not site.cache.enabled:
        selected.remove("bucket")
        print("skipped   bucket    (cache.enabled is false)", file=out)
    done = {}
    try:
        for index, step in enumerate(selected, 1):
            if out.isatty():  # progress on a terminal; a pipe or a log gets the report lines only
                print(f"[{index}/{len(selected)}] {step}", file=out, flush=True)
            login = admin_login(step, vault.values)
            done[step] = _step(step, site, login, vault, report, rotate_client_secret, timeout)
            done[step].run()
        if "keycloak" in done and "postgres" in done:  # read-only: stored LiteLLM roles above the Keycloak roles
            from bootstrap.role_audit import report_excess

            report_excess(site, done["keycloak"].admin, done["postgres"].conninfo, vault.values, out)
    finally:
        if vault.written:
            print(f"stored in {store.rel}: {', '.join(sorted(set(vault.written)))}", file=out)
    changed = report.changed()
    if not changed:
        print(f"nothing to do: {len(report.actions)} object(s) already converged", file=out)
    else:
        verb = "would change" if dry_run else "changed"
        print(f"{verb} {len(changed)} of {len(report.actions)} object(s)", file=out)
        if vault.written and not dry_run:
            print(f"next: generator render --site {site_name}", file=out)
    return 0


def _offline_plan(site, only: tuple[str, ...], out: TextIO, report: Report) -> int:  # noqa: ANN001 - a Site
    """The plan for a fresh install, from the site file alone: no service is asked, no key or credential needed."""
    from bootstrap import bucket_step, keycloak_step, postgres_step

    plans = {"keycloak": keycloak_step.fresh_plan, "postgres": postgres_step.fresh_plan, "bucket": bucket_step.fresh_plan}
    stored = {"keycloak": ["CLIENT_SECRET", *(["PROXY_ADMIN_ID"] if site.keycloak.proxy_admin else [])],
              "postgres": ["DATABASE_URL"],
              "bucket": ["S3_AWS_ACCESS_KEY_ID", "S3_AWS_SECRET_ACCESS_KEY"]}
    selected = [s for s in STEPS if (not only or s in only) and (s != "bucket" or site.cache.enabled)]
    for step in selected:
        for obj, detail in plans[step](site):
            report.add(step, obj, CREATED, detail)
    print(f"would store in sops: {', '.join(key for step in selected for key in stored[step])}", file=out)
    print(f"would create {len(report.actions)} object(s) on services that have none of them "
          "(offline: no service was asked; --dry-run without --offline shows what a real one lacks)", file=out)
    return 0


def _step(name: str, site, login, vault: Vault, report: Report, rotate: bool, timeout: float):
    if name == "keycloak":
        from bootstrap.keycloak_step import KeycloakStep

        return KeycloakStep(site, login, vault, report, rotate_secret=rotate, timeout=timeout)
    if name == "postgres":
        from bootstrap.postgres_step import PostgresStep

        return PostgresStep(site, login, vault, report, timeout=timeout)
    from bootstrap.bucket_step import BucketStep

    return BucketStep(site, login, vault, report, timeout=timeout)
