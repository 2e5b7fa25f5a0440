// The backend origin the card calls with hubspot.fetch. It must equal permittedUrls.fetch in
// app-hsmeta.json (scripts/check-project.mjs checks it) and the server's PUBLIC_BASE_URL.
export const BACKEND = 'https://salesloop.example.com';
