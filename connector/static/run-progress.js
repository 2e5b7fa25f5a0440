// "Run the loops now": post without leaving the page, then poll the run's status until it ends.
// When a run this page watched ends, reload so task statuses and active versions show the outcome.
(function () {
  const box = document.getElementById("run");
  if (!box) return;
  const form = box.querySelector("form");
  const button = form.querySelector("button");
  const bar = document.getElementById("run-bar");
  const step = document.getElementById("run-step");
  const message = document.getElementById("run-message");
  const live = (s) => s.state === "running" || s.state === "queued";
  let watching = live({state: box.dataset.state});

  function show(s) {
    box.dataset.state = s.state;
    box.querySelector(".run-progress").hidden = s.state === "idle";
    bar.value = s.percent;
    step.textContent = s.percent + "% · " + s.step;
    button.disabled = live(s);
    button.textContent = live(s) ? "Running the loops…" : "Run the loops now";
    box.setAttribute("aria-busy", live(s) ? "true" : "false");
    if (live(s)) message.textContent = "";
    if (s.message) { message.textContent = s.message; message.className = s.state === "failed" ? "run-failed" : "run-done"; }
  }

  function poll() {
    fetch(box.dataset.status, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then((r) => r.json())
      .then((s) => {
        show(s);
        if (live(s)) setTimeout(poll, 1000);
        else if (watching && s.finished) location.reload();
      })
      .catch(() => setTimeout(poll, 3000));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin", headers: {Accept: "application/json"}})
      .then((r) => r.json())
      .then((s) => { watching = true; show(s); poll(); })
      .catch(() => form.submit());
  });

  if (watching) poll();
})();
