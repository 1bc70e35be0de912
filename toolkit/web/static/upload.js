// Drag and drop onto an upload form: the dropped files go into its file input and the form is sent.
// Without script the plain file input works the same.
document.querySelectorAll("form.upload").forEach(function (form) {
  var input = form.querySelector("input[type=file]");
  ["dragenter", "dragover"].forEach(function (ev) {
    form.addEventListener(ev, function (e) { e.preventDefault(); form.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (ev) {
    form.addEventListener(ev, function () { form.classList.remove("dragging"); });
  });
  form.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      form.submit();
    }
  });
});
