// The one script of the console: a page that asks for it (the overview) reloads itself.
(function () {
  var seconds = Number(document.body.dataset.refresh || 0);
  if (seconds > 0) {
    setTimeout(function () { if (!document.hidden) { location.reload(); } }, seconds * 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { setTimeout(function () { location.reload(); }, seconds * 1000); }
    });
  }
})();
