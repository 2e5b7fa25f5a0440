// The backend origin the card calls with hubspot.fetch. It must equal permittedUrls.fetch in
// app-hsmeta.json (scripts/check-project.mjs checks it) and the server's PUBLIC_BASE_URL.
// The example origin is the template's documented default: `salesloop package hubspot --origin ...`
// writes a deployment's project with its own origin (ui_extensions/packaging.py).
export const BACKEND = 'https://salesloop.example.com';
