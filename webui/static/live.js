// Live regions (webui/live.py): htmx polls them; this file only keeps a poll
// from wiping out what the user is doing, and tells screen readers that
// something changed. No inline script: the pages' CSP forbids it.
document.addEventListener("htmx:beforeRequest", function (event) {
  var region = event.detail.elt;
  if (!region.hasAttribute || !region.hasAttribute("data-live-region")) return;
  // A ticked checkbox or a field being filled in inside the region: wait.
  // (Focus on a link or checkbox survives a swap: htmx restores it by id.)
  var active = document.activeElement;
  var editing = region.contains(active) && active.matches("select, textarea, input:not([type=checkbox])");
  if (region.querySelector("input[type=checkbox]:checked") || editing) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:afterSwap", function (event) {
  var region = event.detail.elt;
  if (!region.hasAttribute || !region.hasAttribute("data-live-region")) return;
  var status = document.getElementById("live-status");
  if (status) status.textContent = "Die Angaben auf dieser Seite wurden aktualisiert.";
});
