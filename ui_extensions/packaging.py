"""`salesloop package hubspot|salesforce`: the CRM packages rendered for one deployment.

The HubSpot project (ui_extensions/hubspot) and the SFDX metadata (ui_extensions/salesforce) are
templates: they carry EXAMPLE_ORIGIN and EXAMPLE_CONTACT as their documented defaults, so the tree
stays a valid project that the offline checks and tests read as is. Rendering copies a template
with the deployment's origin (OAuth callback URLs, the card's fetch origin, the webhook target, the
Canvas URL, documentation links) and support contact put in, refuses any other use of the example
host, then validates the result offline: the same URL rules the tests hold the tree to, and for
HubSpot the project check on HubSpot's own parser (scripts/check-project.mjs) when node and the
project's node_modules are present.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import click

EXAMPLE_ORIGIN = "https://salesloop.example.com"  # the templates' documented default origin
EXAMPLE_CONTACT = "support@salesloop.example.com"  # ... and support contact
EXAMPLE_HOST = "salesloop.example.com"
HERE = Path(__file__).resolve().parent
TEMPLATES = {"hubspot": HERE / "hubspot", "salesforce": HERE / "salesforce"}
# What a HubSpot upload needs (hsproject.json and src/); the rest of the folder is our offline tooling.
HUBSPOT_PARTS = ("hsproject.json", "src")
SKIP = {"node_modules", ".sfdx", ".sf"}
TEXT = {".json", ".js", ".jsx", ".ts", ".tsx", ".xml", ".md", ".txt", ".css", ".html"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NS = "{http://soap.sforce.com/2006/04/metadata}"


class PackageError(ValueError):
    """The origin, contact or template cannot make a valid package."""


def check_origin(origin: str) -> str:
    """A bare https origin (scheme and host, optional port; no path, query or fragment)."""
    parts = urlsplit(origin.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise PackageError(f"the origin must be a bare https address such as https://loops.example.org, not {origin!r}")
    return f"https://{parts.netloc}"


def render(crm: str, origin: str, out: Path, contact: str | None = None) -> list[Path]:
    """Copy the `crm` template into `out` with this deployment's origin and contact; the files written."""
    origin = check_origin(origin)
    contact = contact or f"support@{urlsplit(origin).hostname}"
    if not EMAIL.match(contact):
        raise PackageError(f"the contact must be an email address, not {contact!r}")
    if out.exists() and any(out.iterdir()):
        raise PackageError(f"{out} is not empty: choose a new folder")
    template = TEMPLATES[crm]
    roots = [template / p for p in HUBSPOT_PARTS] if crm == "hubspot" else [template]
    written = []
    for root in roots:
        for src in sorted(root.rglob("*") if root.is_dir() else [root]):
            if src.is_dir() or SKIP & set(src.relative_to(template).parts):
                continue
            dest = out / src.relative_to(template)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix in TEXT:
                dest.write_text(_fill(src, src.read_text(), origin, contact))
            else:
                shutil.copyfile(src, dest)
            written.append(dest)
    return written


def _fill(src: Path, text: str, origin: str, contact: str) -> str:
    filled = text.replace(EXAMPLE_CONTACT, contact).replace(EXAMPLE_ORIGIN, origin)
    if EXAMPLE_HOST in filled:
        raise PackageError(f"{src}: uses the example host in a way the renderer does not know; use "
                           f"{EXAMPLE_ORIGIN} or {EXAMPLE_CONTACT}")
    return filled


def validate(crm: str, out: Path, origin: str, contact: str) -> list[str]:
    """Why the rendered package is not valid (empty: valid), checked offline."""
    leftovers = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.suffix in TEXT
                 and EXAMPLE_HOST in p.read_text()]
    problems = [f"{p}: still names the example host" for p in leftovers]
    return problems + (_hubspot(out, origin, contact) if crm == "hubspot" else _salesforce(out, origin, contact))


def _hubspot(out: Path, origin: str, contact: str) -> list[str]:
    app = json.loads((out / "src/app/app-hsmeta.json").read_text())["config"]
    hooks = json.loads((out / "src/app/webhooks/webhooks-hsmeta.json").read_text())["config"]
    backend = re.search(r"BACKEND = '([^']+)'", (out / "src/app/cards/config.js").read_text())
    problems = []
    if app["auth"]["redirectUrls"] != [f"{origin}/oauth/hubspot/callback"]:
        problems.append(f"app: redirect URLs {app['auth']['redirectUrls']} are not {origin}/oauth/hubspot/callback")
    if app["permittedUrls"]["fetch"] != [origin] or backend is None or backend.group(1) != origin:
        problems.append(f"the card must fetch from {origin} (permittedUrls.fetch and cards/config.js)")
    if hooks["settings"]["targetUrl"] != f"{origin}/webhooks/hubspot":
        problems.append(f"webhooks must target {origin}/webhooks/hubspot")
    if app["support"]["supportEmail"] != contact:
        problems.append(f"support email is {app['support']['supportEmail']}, not {contact}")
    return problems + hubspot_project_check(out)


def hubspot_project_check(out: Path) -> list[str]:
    """HubSpot's own parser over the rendered project (scripts/check-project.mjs), as check.sh runs it."""
    script = TEMPLATES["hubspot"] / "scripts" / "check-project.mjs"
    if shutil.which("node") is None or not (TEMPLATES["hubspot"] / "node_modules").is_dir():
        return ["HubSpot's project parser is not installed: run ui_extensions/hubspot/check.sh once, then again"]
    done = subprocess.run(["node", str(script), str(out)], capture_output=True, text=True, timeout=120, check=False)  # noqa: S603, S607
    return [] if done.returncode == 0 else [line.strip(" -") for line in done.stdout.splitlines()[1:] if line.strip()]


def _salesforce(out: Path, origin: str, contact: str) -> list[str]:
    problems, values = [], {}
    for path in out.rglob("*.xml"):
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - our own rendered files
        except ET.ParseError as exc:
            problems.append(f"{path.relative_to(out)}: not valid XML ({exc})")
            continue
        for tag in ("callbackUrl", "canvasUrl", "contactEmail", "infoUrl"):
            for el in root.iter(NS + tag):
                values[tag] = (el.text or "").strip()
    wanted = {"callbackUrl": f"{origin}/oauth/salesforce/callback", "canvasUrl": f"{origin}/cards/salesforce",
              "contactEmail": contact}
    problems += [f"{tag} is {values.get(tag)!r}, not {want!r}" for tag, want in wanted.items() if values.get(tag) != want]
    if not values.get("infoUrl", "").startswith(origin + "/"):
        problems.append(f"infoUrl {values.get('infoUrl')!r} is not on {origin}")
    return problems


@click.command("package")
@click.argument("crm", type=click.Choice(["hubspot", "salesforce"]))
@click.option("--origin", required=True, help="This deployment's public https origin (PUBLIC_BASE_URL).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder to write the package into.")
@click.option("--contact", default=None, help="Support email shown to admins (default: support@<origin's host>).")
def package(crm: str, origin: str, out: Path, contact: str | None) -> None:
    """Write the HubSpot project or the Salesforce SFDX metadata for this deployment, checked offline."""
    try:
        written = render(crm, origin, out, contact)
    except PackageError as exc:
        raise click.ClickException(str(exc)) from exc
    origin = check_origin(origin)
    contact = contact or f"support@{urlsplit(origin).hostname}"
    click.echo(f"wrote {len(written)} files for {crm} to {out} (origin {origin}, contact {contact})")
    problems = validate(crm, out, origin, contact)
    if problems:
        raise click.ClickException("the package is not valid:\n  - " + "\n  - ".join(problems))
    click.echo("valid: checked offline" + (" with HubSpot's project parser" if crm == "hubspot" else ""))
