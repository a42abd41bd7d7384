// Shows how much of a file has been sent for forms marked data-upload-progress.
// The page the server answers with (the phase page, or the form with its errors) replaces this one.
(function () {
  document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.XMLHttpRequest || !window.FormData) return;
      event.preventDefault();
      var box = form.querySelector(".upload-progress");
      var bar = box && box.querySelector("progress");
      var text = box && box.querySelector("[data-progress-text]");
      var button = form.querySelector("button[type=submit]");
      if (box) box.hidden = false;
      if (button) button.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable || !bar) return;
        var pct = Math.round((100 * e.loaded) / e.total);
        bar.value = pct;
        if (text) text.textContent = pct < 100 ? pct + "%" : "sent; profiling…";
      });
      xhr.addEventListener("load", function () {
        history.replaceState(null, "", xhr.responseURL || window.location.href);
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        if (box) box.hidden = true;
        if (button) button.disabled = false;
        alert("The upload did not reach the server; check the connection and try again.");
      });
      xhr.send(new FormData(form));
    });
  });
})();
