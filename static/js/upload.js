// Shows how much of a file has been sent, for forms marked data-upload-progress.
// Without JavaScript (or without XMLHttpRequest and FormData) the form posts as usual.
// The form's box (.upload-progress) carries data-state: "sending", then "done" once every byte
// is sent, or "failed". The page the server answers with (the phase page with its message, or the
// form with its errors) then replaces this one, as a plain post would.
(function () {
  if (!window.XMLHttpRequest || !window.FormData) return;
  document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
    var box = form.querySelector(".upload-progress");
    var bar = box && box.querySelector("progress");
    var text = box && box.querySelector("[data-progress-text]");
    var button = form.querySelector("button[type=submit]");

    function show(state, value, words) {
      if (!box) return;
      box.hidden = false;
      if (bar && value !== null) bar.value = value;
      if (text) text.textContent = words;
      box.setAttribute("data-state", state);
    }

    function failed(words) {
      show("failed", null, words);
      if (button) button.disabled = false;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button) button.disabled = true;
      show("sending", 0, "0%");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.min(100, Math.round((100 * e.loaded) / e.total));
        show("sending", pct, pct + "%");
      });
      xhr.upload.addEventListener("load", function () {
        show("done", 100, (box && box.getAttribute("data-sent-text")) || "Sent; waiting for the server…");
      });
      xhr.addEventListener("load", function () {
        if (!xhr.responseText) {
          failed("The server answered " + xhr.status + " with no page; try again.");
          return;
        }
        history.replaceState(null, "", xhr.responseURL || window.location.href);
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        failed("The upload did not reach the server; check the connection and try again.");
      });
      xhr.addEventListener("abort", function () {
        failed("The upload was stopped; try again.");
      });
      xhr.send(new FormData(form));
    });
  });
})();
