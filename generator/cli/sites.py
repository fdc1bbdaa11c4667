"""The site and ci command groups: add or remove a site, write the repository's CI workflow."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from generator.cli.common import cluster_options, complete_site, examples, output_option, repo_of
from generator.errors import UsageError


@click.command("init", epilog=examples(
    "generator secrets keygen      # your age key, if you have none",
    "generator init litellm-gitops --git-url https://git.example.org/platform/litellm-gitops.git",
    "generator init --git-url ssh://git@git.example.org/ops/gitops.git --engine flux --ci gitea "
    "--generator-git https://git.example.org/tools/generator.git"))
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--git-url", required=True, metavar="URL", help="This repository as the engines clone it (https:// or ssh://).")
@click.option("--branch", default="main", show_default=True, help="The branch the engines follow.")
@click.option("--engine", "engines", type=click.Choice(["flux", "argocd", "both"]), default="both", show_default=True,
              help="Which GitOps engines the new sites turn on.")
@click.option("--age-recipient", "recipients", multiple=True, metavar="AGE1...",
              help="Who may decrypt the secrets (repeatable; default: the public key of your age key file).")
@click.option("--git-credential", type=click.Choice(["external", "sealed"]), default="external", show_default=True,
              help="external: the engines' git Secret is made outside git (flux bootstrap); sealed: kept in git.")
@click.option("--ci", "ci_provider", type=click.Choice(["gitea", "github", "gitlab"]), default=None,
              help="Also write the CI workflow (as 'generator ci init' does).")
@click.option("--generator-git", metavar="URL", help="With --ci: where the CI fetches the generator from.")
@click.option("--generator-ref", default=None, metavar="REF",
              help="With --ci: the generator's tag or commit the CI installs (default: as ci init pins it).")
@click.pass_context
def init(ctx: click.Context, directory: Path | None, git_url: str, branch: str, engines: str,
         recipients: tuple[str, ...], git_credential: str, ci_provider: str | None, generator_git: str | None,
         generator_ref: str | None) -> None:
    """Make DIRECTORY (default: here) a GitOps repository: sites/, .sops.yaml, platform.yaml, .gitignore, README."""
    from generator.repo_init import InitRequest, run_init

    target = directory or ctx.obj.get("repo") or Path.cwd()
    ctx.exit(run_init(InitRequest(target, git_url, branch, engines, recipients, git_credential, ci_provider,
                                  generator_git, generator_ref)))


@click.group(epilog=examples(
    "generator site new eu --domain eu.example.com --from prod",
    "generator site remove eu --yes"))
def site() -> None:
    """Add a site in one command, or remove one (files, secrets, rendered outputs)."""


@site.command("new", epilog=examples(
    "generator site new eu --domain eu.example.com --from prod --cert cert.pem",
    "generator site new eu --domain eu.example.com --age-recipient age1... --fetch-cert --context thinkube"))
@click.argument("name")
@click.option("--domain", required=True, help="The site's domain (the proxy is litellm.<domain>).")
@click.option("--from", "source", metavar="SITE", shell_complete=complete_site,
              help="Copy this site's file (comments kept), with the new domain.")
@click.option("--age-recipient", "recipients", multiple=True, metavar="AGE1...",
              help="Who may decrypt the site's secrets (repeatable); adds the site's rule to .sops.yaml.")
@click.option("--cert", type=click.Path(path_type=Path, readable=False), help="The sealing certificate (PEM).")
@click.option("--fetch-cert", is_flag=True, help="Fetch the certificate from the cluster (--kubeconfig, --context).")
@click.option("--controller-name", default="sealed-secrets-controller", show_default=True, help="With --fetch-cert.")
@click.option("--controller-namespace", default="kube-system", show_default=True, help="With --fetch-cert.")
@click.option("--wave", type=click.IntRange(0, 100), default=0, show_default=True, help="rollout.wave")
@click.option("--cluster", metavar="NAME", help="The cluster that runs the site (one platform.yaml names).")
@cluster_options
@click.option("--git-url", metavar="URL", help="The GitOps repository the engines read (default: platform.yaml's "
              "repository, as generator init records it, else the fleet's).")
@click.option("--branch", metavar="BRANCH", help="The branch the engines follow (default: as for --git-url).")
@click.pass_context
def site_new(ctx: click.Context, name: str, domain: str, source: str | None, recipients: tuple[str, ...],
             cert: Path | None, fetch_cert: bool, controller_name: str, controller_namespace: str, wave: int,
             cluster: str | None, kubeconfig: Path | None, context: str | None, git_url: str | None,
             branch: str | None) -> None:
    """Write sites/NAME/site.yaml, its .sops.yaml rule, certificate and secrets, then render it.

    Any failure removes what the run made (the site's directory, a new .sops.yaml) and says so.
    """
    from generator.scaffold import NewSite, run_site_new

    if (kubeconfig or context) and not fetch_cert:
        raise click.UsageError("--kubeconfig and --context go with --fetch-cert")
    ctx.exit(run_site_new(repo_of(ctx), NewSite(name, domain, source, recipients, cert, fetch_cert, wave,
                                                controller=(controller_name, controller_namespace),
                                                kubeconfig=kubeconfig, context=context, git_url=git_url,
                                                branch=branch, cluster=cluster)))


@site.command("remove", epilog=examples("generator site remove eu", "generator site remove eu --yes"))
@click.argument("name", shell_complete=complete_site)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def site_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove sites/NAME and its outputs; the fleet's parents then prune it from the cluster."""
    from generator.scaffold import run_site_remove

    repo = repo_of(ctx)
    repo.check_site_name(name)
    if not yes:
        if not sys.stdin.isatty():  # nobody to ask: a script or CI must say so
            raise UsageError(f"site remove {name}: no terminal to confirm on; rerun with --yes")
        click.confirm(f"remove site {name}, its secrets file and its rendered outputs?", abort=True)
    ctx.exit(run_site_remove(repo, name))


@click.group(epilog=examples(
    "generator ci init --provider gitea --generator-git https://git.example.com/platform/generator.git"))
def ci() -> None:
    """The CI workflow of this GitOps repository."""


@ci.command("init", epilog=examples(
    "generator ci init --provider github --generator-git https://github.com/example/generator.git",
    "generator ci init --provider gitea --generator-git URL --generator-credential-secret GENERATOR_TOKEN",
    "generator ci init --provider argo --generator-git URL --repository platform/litellm-gitops"))
@click.option("--provider", required=True, type=click.Choice(["gitea", "github", "gitlab", "argo"]),
              help="Writes .gitea/workflows/litellm-gitops.yaml, .github/workflows/litellm-gitops.yaml, "
              ".gitlab-ci.yml, or .argo/ (an Argo Workflows WorkflowTemplate and an Argo Events Sensor).")
@click.option("--generator-git", required=True, metavar="URL",
              help="Git URL the CI clones the generator from (the runner must be able to read it).")
@click.option("--generator-ref", default=None, metavar="REF",
              help="Tag or commit of the generator the CI installs (default: the v<version> tag when it points at "
              "the commit this generator runs from, else that commit).")
@click.option("--generator-credential-secret", "credential_secret", default=None, metavar="NAME",
              help="The CI secret (argo: the Kubernetes Secret, key 'token') holding a token that reads a private "
              "generator repository (argo: and the GitOps repository).")
@click.option("--repository", default=None, metavar="OWNER/NAME",
              help="argo: the GitOps repository in Gitea whose pushes start a run.")
@click.option("--argo-namespace", default=None, metavar="NAME", help="argo: where Argo runs (default: argo).")
@click.option("--argo-cache-claim", default=None, metavar="PVC",
              help="argo: a PersistentVolumeClaim that keeps the downloads and builds between runs.")
@click.option("--force", is_flag=True, help="Replace an existing workflow file that differs.")
@click.option("--dry-run", is_flag=True, help="Write nothing; say whether the file would be created or updated.")
@click.pass_context
def ci_init(ctx: click.Context, provider: str, generator_git: str, generator_ref: str | None,
            credential_secret: str | None, repository: str | None, argo_namespace: str | None,
            argo_cache_claim: str | None, force: bool, dry_run: bool) -> None:
    """Write the CI workflow: render --all --check, validate --all and audit, with the pinned tools."""
    from generator.ci_workflows import ArgoTarget, CiRequest, ci_init as run

    argo = None
    if repository is not None or argo_namespace is not None or argo_cache_claim is not None:
        argo = ArgoTarget(repository or "", namespace=argo_namespace or ArgoTarget.namespace,
                          cache_claim=argo_cache_claim)
    ctx.exit(run(repo_of(ctx), CiRequest(provider, generator_git, generator_ref, credential_secret, argo,
                                         force=force, dry_run=dry_run)))


@click.command(epilog=examples(
    "generator adopt --site home --context thinkube --age-recipient age1... --cert sealing-cert.pem",
    "kubectl -n litellm get secret,configmap,deployment,service,httproute,ingress,pvc -o yaml > litellm.yaml",
    "generator adopt --site home --from-manifests litellm.yaml --dry-run",
    "generator adopt --site home --from-manifests litellm.yaml --dry-run -o json   # the report's rows"))
@click.option("--site", required=True, metavar="NAME", shell_complete=complete_site,
              help="The new site's name (sites/NAME; the names taken are offered).")
@click.option("--from-manifests", "manifests", type=click.Path(dir_okay=False, path_type=Path, readable=False),
              help="A saved 'kubectl get -o yaml' (or -o json) dump of the original objects: a List or documents.")
@cluster_options
@click.option("--namespace", default=None, metavar="NS", help="Where the playbooks deployed (default: litellm; "
              "a dump's own when it holds one).")
@click.option("--age-recipient", "recipients", multiple=True, metavar="AGE1...",
              help="Who may decrypt the site's secrets (repeatable); adds the site's rule to .sops.yaml.")
@click.option("--cert", type=click.Path(path_type=Path, readable=False), help="The sealing certificate (PEM).")
@click.option("--dry-run", is_flag=True, help="Report what would be mapped and written; write nothing.")
@output_option
@click.pass_context
def adopt(ctx: click.Context, site: str, manifests: Path | None, kubeconfig: Path | None, context: str | None,
          namespace: str | None, recipients: tuple[str, ...], cert: Path | None, dry_run: bool, output: str) -> None:
    """Take over a LiteLLM that Thinkube's playbooks deployed: its site file and its secrets, unchanged.

    Exit 0 when everything was carried, 1 when something was left behind (listed with file and line),
    2 for bad input (nothing written), 3 when the cluster cannot be read.
    """
    from generator.adopt.run import AdoptRequest, run_adopt
    from generator.tools.kubectl import Cluster

    if manifests is not None and (kubeconfig or context):
        raise click.UsageError("--from-manifests reads a saved dump: --kubeconfig and --context go without it")
    live = None if manifests is not None else Cluster(kubeconfig, context)
    ctx.exit(run_adopt(repo_of(ctx), AdoptRequest(site, manifests, live, namespace, recipients, cert, dry_run,
                                                  output)))  # type: ignore[arg-type] - click's choice
